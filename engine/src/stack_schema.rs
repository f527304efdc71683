//! The JSON Schema of stack files, for editors.
//!
//! It is generated from the same resource schemas the validator checks
//! against, so the editor and `rinfra validate` never disagree about types,
//! enums and ranges. Rules that span several properties (such as "exactly
//! one of statistic and extendedStatistic") and references stay with the
//! validator.

use rinfra_provider::Registry;
use rinfra_provider::schema::properties_json_schema;
use serde_json::{Value, json};

/// The schema's id; its version changes when the stack format does.
pub const SCHEMA_ID: &str = "https://rinfra.dev/schemas/stack/v1.json";

/// The JSON Schema (draft-07) of a stack file with the types in `registry`.
pub fn stack_schema(registry: &Registry) -> Value {
    let short: Vec<&str> = registry.tokens().collect();
    // Each type in both of Pulumi's spellings.
    let mut tokens: Vec<String> =
        short.iter().flat_map(|t| [t.to_string(), crate::stack::canonical_token(t)]).collect();
    tokens.push("pulumi:providers:aws".into());
    let per_type: Vec<Value> = short
        .iter()
        .filter_map(|t| registry.get(t))
        .map(|p| {
            let s = p.schema();
            json!({
                "if": {"properties": {"type": {"enum": [s.token, crate::stack::canonical_token(s.token)]}}},
                "then": {"properties": {"properties": properties_json_schema(&s.properties)}}
            })
        })
        .collect();
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": SCHEMA_ID,
        "title": "rinfra stack",
        "description": "A stack in Pulumi YAML syntax, as rinfra reads it.",
        "type": "object",
        "additionalProperties": false,
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_-]*$", "description": "The project's name: the namespace of its config keys."},
            "description": {"type": "string"},
            "backend": {
                "type": "object",
                "additionalProperties": false,
                "properties": {"url": {"type": "string", "pattern": "^(s3|file)://", "description": "Where the stacks' states live, such as s3://team-state/rinfra."}}
            },
            "runtime": {
                "anyOf": [
                    {"const": "yaml"},
                    {"type": "object", "required": ["name"], "properties": {"name": {"const": "yaml"}, "options": {"type": "object"}}}
                ],
                "description": "Accepted for Pulumi compatibility."
            },
            "template": {"type": "object", "description": "Used by `pulumi new` only; ignored."},
            "main": {"type": "string", "description": "The directory holding the program."},
            "options": {"type": "object", "description": "Pulumi CLI settings; ignored."},
            "plugins": {"type": "object", "description": "Pulumi plugin sources; ignored."},
            "config": {"$ref": "#/definitions/config"},
            "configuration": {"$ref": "#/definitions/config", "description": "The older spelling of `config`."},
            "variables": {"type": "object"},
            "resources": {
                "type": "object",
                "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_.-]*$"},
                "additionalProperties": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["type"],
                    "properties": {
                        "type": {"enum": tokens},
                        "name": {"type": "string", "description": "The logical name, for the URN and auto-naming; the key by default."},
                        "properties": {"type": "object"},
                        "options": {"$ref": "#/definitions/options"},
                        "get": {
                            "type": "object",
                            "additionalProperties": false,
                            "required": ["id"],
                            "properties": {"id": {"type": "string", "description": "The cloud id of an existing resource to read, never manage."}}
                        },
                        "defaultProvider": {"type": "boolean", "description": "For a provider: use it for every resource of its package."}
                    },
                    "allOf": per_type
                }
            },
            "outputs": {"type": "object"}
        },
        "definitions": {
            "config": {
                "type": "object",
                "additionalProperties": {
                    "anyOf": [
                        {"type": ["string", "number", "boolean", "array"], "description": "The shorthand: a default of the literal's type."},
                        {
                            "type": "object",
                            "additionalProperties": false,
                            "properties": {
                                "type": {"enum": ["String", "Integer", "Number", "Boolean", "string", "integer", "number", "boolean", "int", "bool", "array", "List<String>", "List<Integer>", "List<Number>", "List<Boolean>"]},
                                "default": {},
                                "value": {},
                                "items": {"type": "object"},
                                "description": {"type": "string"},
                                "secret": {"type": "boolean", "description": "Never show the value in plans or outputs."}
                            }
                        }
                    ]
                }
            },
            "options": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "dependsOn": {"type": "array", "items": {"type": "string"}},
                    "protect": {"type": "boolean"},
                    "deleteBeforeReplace": {"type": "boolean"},
                    "ignoreChanges": {"type": "array", "items": {"type": "string"}},
                    "retainOnDelete": {"type": "boolean"},
                    "import": {"type": "string"},
                    "aliases": {"type": "array", "description": "Names the resource had before: a rename keeps it."},
                    "customTimeouts": {
                        "type": "object",
                        "additionalProperties": false,
                        "properties": {"create": {"type": "string"}, "update": {"type": "string"}, "delete": {"type": "string"}}
                    },
                    "replaceOnChanges": {"type": "array", "items": {"type": "string"}},
                    "additionalSecretOutputs": {"type": "array", "items": {"type": "string"}},
                    "deletedWith": {"type": "string"},
                    "hideDiffs": {"type": "array", "items": {"type": "string"}},
                    "parent": {"type": "string"},
                    "provider": {"type": "string"},
                    "providers": {"type": "array", "items": {"type": "string"}},
                    "version": {"type": "string", "description": "Ignored: rinfra's providers are built in."},
                    "pluginDownloadURL": {"type": "string", "description": "Ignored: rinfra's providers are built in."}
                }
            }
        }
    })
}
