//! Multi-document YAML output: each object serialised by `yaml_serde` (the YAML organisation's
//! maintained `serde_yaml`), one document each, separated by `---`.

use super::K8sError;
use serde::Serialize;

/// Serialises `docs` as one YAML stream, one document per item, in order.
pub fn to_yaml<T: Serialize>(docs: &[T]) -> Result<String, K8sError> {
    let mut out = Vec::new();
    {
        let mut ser = yaml_serde::Serializer::new(&mut out);
        for doc in docs {
            doc.serialize(&mut ser).map_err(|e| K8sError::Yaml(e.to_string()))?;
        }
    }
    String::from_utf8(out).map_err(|e| K8sError::Yaml(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[test]
    fn documents_are_separated_and_read_back() {
        let docs = vec![serde_json::json!({"a": 1}), serde_json::json!({"b": "x: y"})];
        let text = to_yaml(&docs).unwrap();
        assert_eq!(text.matches("\n---\n").count(), 1, "{text}");
        let back: Vec<serde_json::Value> =
            yaml_serde::Deserializer::from_str(&text).map(|d| serde_json::Value::deserialize(d).unwrap()).collect();
        assert_eq!(back, docs);
    }
}
