//! Canonical JSON: keys sorted (by bytes) at every depth, no whitespace. oci-spec keeps maps in
//! `HashMap`s, whose order changes from run to run; this makes the bytes (and digests) stable.

use serde::Serialize;
use serde_json::Value;

/// `v` as canonical JSON bytes.
pub fn canonical_json<T: Serialize>(v: &T) -> Result<Vec<u8>, serde_json::Error> {
    let value = serde_json::to_value(v)?;
    let mut out = Vec::new();
    write_value(&value, &mut out)?;
    Ok(out)
}

fn write_value(v: &Value, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, k)?;
                out.push(b':');
                if let Some(item) = map.get(k) {
                    write_value(item, out)?;
                }
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out)?;
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn sorts_hash_map_keys_at_every_depth() {
        // HashMaps with different random states and insertion orders serialise identically.
        let keys: Vec<String> = (0..50).map(|i| format!("k{i:02}")).collect();
        let mut a: HashMap<String, HashMap<String, u32>> = HashMap::new();
        let mut b: HashMap<String, HashMap<String, u32>> = HashMap::new();
        for (i, k) in keys.iter().enumerate() {
            a.insert(k.clone(), keys.iter().map(|k2| (k2.clone(), i as u32)).collect());
        }
        for (i, k) in keys.iter().enumerate().rev() {
            b.insert(k.clone(), keys.iter().rev().map(|k2| (k2.clone(), i as u32)).collect());
        }
        let ja = canonical_json(&a).unwrap();
        assert_eq!(ja, canonical_json(&b).unwrap());
        let text = String::from_utf8(ja).unwrap();
        assert!(text.starts_with(r#"{"k00":{"k00":0,"k01":0,"#), "{text}");
        assert!(!text.contains(' ') && !text.contains('\n'));
    }

    #[test]
    fn is_compact_and_escapes_strings() {
        let v = serde_json::json!({"b": [1, "x\"y", null, true], "a": {"z": 1.5, "é": "<>"}});
        assert_eq!(
            canonical_json(&v).unwrap(),
            r#"{"a":{"z":1.5,"é":"<>"},"b":[1,"x\"y",null,true]}"#.as_bytes().to_vec()
        );
    }
}
