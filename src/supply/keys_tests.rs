//! Keys made for these tests only (`cosign generate-key-pair` with the password `test-pass`,
//! `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`): they sign nothing else.

use super::*;

pub(crate) const COSIGN_KEY: &str = "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\neyJrZGYiOnsibmFtZSI6InNjcnlwdCIsInBhcmFtcyI6eyJOIjo2NTUzNiwiciI6\nOCwicCI6MX0sInNhbHQiOiJIdXNqRXdzRmp0T0pUNUozSE5YZ1FKQU5nZlVDSnNF\nb1FMM2dHa1RWT05ZPSJ9LCJjaXBoZXIiOnsibmFtZSI6Im5hY2wvc2VjcmV0Ym94\nIiwibm9uY2UiOiJuc1pQZ2NUU2VrR3Z2Ykl5TkxPVk1aVmY1Y243UVppbSJ9LCJj\naXBoZXJ0ZXh0IjoiUUUxTUY0TFlzdmdUSTlHTU92OVVLelN5QTArL2tzY3lFaHB6\ndVFmSEd2MVdZVnNqc2VlazJKcER5TytjNHZPYzF6MU5vcm1lbG9WUzVCNzl5dVFV\nb0d1cUdZdmFQTXVzM1Fia1pnUUo1aFVYV1haSWY4U0hOZG1UbHhnQUloVGh1dmov\nbWdTakNLRndjZFVqZEZnWmVYc3FnaXpIME9QcnF0Um9MT0xRV0k4WHk1QmJNWm5w\nbEFzVnl0QndIMjJQcmM2am4yKzdycngydHc9PSJ9\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n";
pub(crate) const COSIGN_PUB: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEUTf6bOhBmABfnEhxY6KuiCQeFwYj\n8QvoWgivtR4V+jsKbzoItUPLmndw9xOC9LOdBeaFnV5HXekI0PEKqq3mXQ==\n-----END PUBLIC KEY-----\n";
const PLAIN_PKCS8: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgQjZkw2F3u2KgGkS8\n8vQWOVBgJH5YVX236wpGksIbAiahRANCAARJGpc5mKyb5obaNivD0YP2C2Rtcb0e\n5JpQsi0OEEW4gJ11NTwvnbUqxbZsfeXpnUikrQDoxW4pyfJCL9uM2AmR\n-----END PRIVATE KEY-----\n";
const PLAIN_SEC1: &str = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIEI2ZMNhd7tioBpEvPL0FjlQYCR+WFV9t+sKRpLCGwImoAoGCCqGSM49\nAwEHoUQDQgAESRqXOZism+aG2jYrw9GD9gtkbXG9HuSaULItDhBFuICddTU8L521\nKsW2bH3l6Z1IpK0A6MVuKcnyQi/bjNgJkQ==\n-----END EC PRIVATE KEY-----\n";

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn cosign_key_opens_with_its_password_and_signs_for_its_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = write(&dir, "cosign.key", COSIGN_KEY);
    let pub_path = write(&dir, "cosign.pub", COSIGN_PUB);
    let signer = Signer::open(&key, Some("test-pass")).unwrap();
    let public = read_public_key(&pub_path).unwrap();
    assert_eq!(signer.public_key(), &public);
    let sig = signer.sign(b"payload");
    assert!(verify(&public, b"payload", &sig));
    assert!(!verify(&public, b"payloae", &sig));
    assert_eq!(sig, signer.sign(b"payload"), "RFC 6979: deterministic");
    assert!(format!("{signer:?}").starts_with("Signer(sha256:"));
}

#[test]
fn wrong_or_missing_password_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let key = write(&dir, "cosign.key", COSIGN_KEY);
    let err = Signer::open(&key, Some("nope")).unwrap_err();
    assert!(matches!(err, KeyError::WrongPassword { .. }), "{err}");
    assert!(err.to_string().contains("cosign.key") && !err.to_string().contains("nope"), "{err}");
    let err = Signer::open(&key, None).unwrap_err();
    assert!(err.to_string().contains(PASSWORD_ENV), "{err}");
}

#[test]
fn plain_pem_keys_pkcs8_and_sec1() {
    let dir = tempfile::tempdir().unwrap();
    let a = Signer::open(&write(&dir, "a.pem", PLAIN_PKCS8), None).unwrap();
    let b = Signer::open(&write(&dir, "b.pem", PLAIN_SEC1), Some("ignored")).unwrap();
    assert_eq!(a.public_key(), b.public_key());
    assert_eq!(a.fingerprint(), b.fingerprint());
    let pem = public_key_pem(a.public_key());
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
}

#[test]
fn not_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let err = Signer::open(&write(&dir, "x", "hello"), None).unwrap_err();
    assert!(matches!(err, KeyError::NotPem { .. }), "{err}");
    let err = Signer::open(&write(&dir, "y", COSIGN_PUB), None).unwrap_err();
    assert!(err.to_string().contains("not a private key"), "{err}");
    let err = Signer::open(&dir.path().join("missing"), None).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
}
