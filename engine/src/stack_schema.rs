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
    let tokens: Vec<String> = short.iter().flat_map(|t| [t.to_string(), crate::stack::canonical_token(t)]).collect();
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
            "config": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["type"],
                    "properties": {
                        "type": {"enum": ["String", "Integer", "Number", "Boolean", "string", "integer", "number", "boolean", "int", "bool"]},
                        "default": {},
                        "description": {"type": "string"},
                        "secret": {"type": "boolean", "description": "Never show the value in plans or outputs."}
                    }
                }
            },
            "variables": {"type": "object"},
            "resources": {
                "type": "object",
                "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_-]*$"},
                "additionalProperties": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["type"],
                    "properties": {
                        "type": {"enum": tokens},
                        "properties": {"type": "object"},
                        "options": {"$ref": "#/definitions/options"}
                    },
                    "allOf": per_type
                }
            },
            "outputs": {"type": "object"}
        },
        "definitions": {
            "options": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "dependsOn": {"type": "array", "items": {"type": "string"}},
                    "protect": {"type": "boolean"},
                    "deleteBeforeReplace": {"type": "boolean"},
                    "ignoreChanges": {"type": "array", "items": {"type": "string"}},
                    "retainOnDelete": {"type": "boolean"},
                    "import": {"type": "string"}
                }
            }
        }
    })
}
