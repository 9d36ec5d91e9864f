//! Where recordings are stored, as the admin configured it: one serde enum,
//! tagged by `backend`, with the local directory as the default.
//!
//! This module only describes and checks settings; it never connects to
//! anything (see [`crate::backend`] and [`crate::probe`]). Credentials are
//! [`Secret`]s: `Debug`, logs and serialized responses show `***`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// The backends a [`StorageConfig`] may name, in the words the settings use.
pub const BACKENDS: [&str; 5] = ["local", "s3", "gcs", "azure", "sftp"];

/// The default local storage directory, relative to the working directory.
pub const DEFAULT_LOCAL_ROOT: &str = "./callrec-data/storage";

/// The storage the recordings are delivered to.
///
/// `prefix`/`root` is the folder inside the bucket, container or server under
/// which callrec writes `recordings/YYYY/MM/DD/...`; empty means the top.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "backend", rename_all = "lowercase", deny_unknown_fields)]
pub enum StorageConfig {
    /// A directory on this machine (the embedded default).
    Local {
        /// The directory; created on first write.
        root: PathBuf,
    },
    /// Any S3-compatible service (AWS S3, MinIO, Ceph, Garage, ...).
    S3 {
        /// `https://host[:port]`; empty for AWS's regional endpoint.
        #[serde(default)]
        endpoint: String,
        /// The region (`us-east-1` for most S3-compatible servers).
        #[serde(default = "default_region")]
        region: String,
        /// The bucket, which must already exist.
        bucket: String,
        /// The access key id.
        access_key: String,
        /// The secret access key.
        secret_key: Secret,
        /// Folder inside the bucket.
        #[serde(default)]
        prefix: String,
    },
    /// Google Cloud Storage.
    Gcs {
        /// The bucket, which must already exist.
        bucket: String,
        /// The service-account key: its JSON, or that JSON in base64.
        credential: Secret,
        /// Folder inside the bucket.
        #[serde(default)]
        prefix: String,
        /// Another endpoint than `https://storage.googleapis.com` (emulators).
        #[serde(default)]
        endpoint: String,
    },
    /// Azure Blob Storage.
    Azure {
        /// `https://<account>.blob.core.windows.net`, or an emulator's URL
        /// with the account in the path (`http://127.0.0.1:10000/devstoreaccount1`).
        endpoint: String,
        /// The storage account name.
        account_name: String,
        /// The storage account key (base64, as the Azure portal shows it).
        account_key: Secret,
        /// The container, which must already exist.
        container: String,
        /// Folder inside the container.
        #[serde(default)]
        prefix: String,
    },
    /// An SFTP server, reached with the system `ssh` client and a key.
    Sftp {
        /// `host` or `host:port`.
        endpoint: String,
        /// The account on the server.
        user: String,
        /// The private key file (it must not need a passphrase).
        key_path: PathBuf,
        /// Absolute directory on the server under which recordings go.
        root: String,
        /// How the server's host key is checked.
        #[serde(default)]
        host_key: HostKeyPolicy,
    },
}

/// How the SFTP server's host key is checked by `ssh`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostKeyPolicy {
    /// The key must already be in the service account's `known_hosts`.
    #[default]
    Strict,
    /// Any key is accepted (only for a server on a trusted network).
    AcceptAny,
}

fn default_region() -> String {
    "us-east-1".to_owned()
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig::Local {
            root: PathBuf::from(DEFAULT_LOCAL_ROOT),
        }
    }
}

/// Settings that cannot describe a usable storage.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// The `backend` field names no backend we have.
    #[error("unknown storage backend {0:?}: use one of local, s3, gcs, azure, sftp")]
    UnknownBackend(String),
    /// The `backend` field is missing.
    #[error(
        "the storage settings name no backend: set \"backend\" to one of local, s3, gcs, azure, sftp"
    )]
    MissingBackend,
    /// A required field is empty.
    #[error("the {backend} storage settings need a {field}: fill it in")]
    Missing {
        /// The backend.
        backend: &'static str,
        /// The empty field.
        field: &'static str,
    },
    /// A field has a value that cannot work.
    #[error("the {backend} storage setting {field} is invalid: {why}")]
    Invalid {
        /// The backend.
        backend: &'static str,
        /// The field.
        field: &'static str,
        /// What is wrong and what to do.
        why: String,
    },
    /// The settings are not the expected JSON shape.
    #[error("the storage settings cannot be read: {0}")]
    Malformed(String),
}

impl StorageConfig {
    /// Parses settings from JSON, naming an unknown backend plainly, then
    /// [`validate`](Self::validate)s them.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| ConfigError::Malformed(e.to_string()))?;
        match value.get("backend") {
            None => return Err(ConfigError::MissingBackend),
            Some(serde_json::Value::String(b)) if !BACKENDS.contains(&b.as_str()) => {
                return Err(ConfigError::UnknownBackend(b.clone()));
            }
            Some(serde_json::Value::String(_)) => {}
            Some(other) => return Err(ConfigError::UnknownBackend(other.to_string())),
        }
        let config: StorageConfig =
            serde_json::from_value(value).map_err(|e| ConfigError::Malformed(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// The backend's name as in the settings (`local`, `s3`, ...).
    pub fn backend(&self) -> &'static str {
        match self {
            StorageConfig::Local { .. } => "local",
            StorageConfig::S3 { .. } => "s3",
            StorageConfig::Gcs { .. } => "gcs",
            StorageConfig::Azure { .. } => "azure",
            StorageConfig::Sftp { .. } => "sftp",
        }
    }

    /// Where recordings go, for people and logs, without any credential.
    pub fn describe(&self) -> String {
        fn under(prefix: &str) -> String {
            if prefix.trim_matches('/').is_empty() {
                String::new()
            } else {
                format!(" under {:?}", prefix.trim_matches('/'))
            }
        }
        match self {
            StorageConfig::Local { root } => format!("local directory {}", root.display()),
            StorageConfig::S3 {
                endpoint,
                bucket,
                prefix,
                ..
            } => {
                let at = if endpoint.is_empty() { "aws" } else { endpoint };
                format!("s3 bucket {bucket:?} at {at}{}", under(prefix))
            }
            StorageConfig::Gcs { bucket, prefix, .. } => {
                format!("gcs bucket {bucket:?}{}", under(prefix))
            }
            StorageConfig::Azure {
                endpoint,
                container,
                prefix,
                ..
            } => format!(
                "azure container {container:?} at {endpoint}{}",
                under(prefix)
            ),
            StorageConfig::Sftp {
                endpoint,
                user,
                root,
                ..
            } => format!("sftp {user}@{endpoint} in {root}"),
        }
    }

    /// Checks what can be checked without connecting: required fields,
    /// URL shapes, that an SFTP key file exists.
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn need(backend: &'static str, field: &'static str, v: &str) -> Result<(), ConfigError> {
            if v.trim().is_empty() {
                Err(ConfigError::Missing { backend, field })
            } else {
                Ok(())
            }
        }
        fn url(backend: &'static str, field: &'static str, v: &str) -> Result<(), ConfigError> {
            if v.starts_with("http://") || v.starts_with("https://") {
                Ok(())
            } else {
                Err(ConfigError::Invalid {
                    backend,
                    field,
                    why: format!("{v:?} is not a url: write it as https://host[:port]"),
                })
            }
        }
        match self {
            StorageConfig::Local { root } => need("local", "root", &root.to_string_lossy()),
            StorageConfig::S3 {
                endpoint,
                region,
                bucket,
                access_key,
                secret_key,
                ..
            } => {
                if !endpoint.is_empty() {
                    url("s3", "endpoint", endpoint)?;
                }
                need("s3", "region", region)?;
                need("s3", "bucket", bucket)?;
                need("s3", "access_key", access_key)?;
                need("s3", "secret_key", secret_key.expose())
            }
            StorageConfig::Gcs {
                bucket,
                credential,
                endpoint,
                ..
            } => {
                need("gcs", "bucket", bucket)?;
                need("gcs", "credential", credential.expose())?;
                if !endpoint.is_empty() {
                    url("gcs", "endpoint", endpoint)?;
                }
                crate::backend::gcs_credential_base64(credential).map(|_| ())
            }
            StorageConfig::Azure {
                endpoint,
                account_name,
                account_key,
                container,
                ..
            } => {
                need("azure", "endpoint", endpoint)?;
                url("azure", "endpoint", endpoint)?;
                need("azure", "account_name", account_name)?;
                need("azure", "account_key", account_key.expose())?;
                need("azure", "container", container)
            }
            StorageConfig::Sftp {
                endpoint,
                user,
                key_path,
                root,
                ..
            } => {
                need("sftp", "endpoint", endpoint)?;
                need("sftp", "user", user)?;
                need("sftp", "root", root)?;
                if !root.starts_with('/') {
                    return Err(ConfigError::Invalid {
                        backend: "sftp",
                        field: "root",
                        why: format!(
                            "{root:?} is relative: give the absolute directory on the server"
                        ),
                    });
                }
                if !key_path.is_file() {
                    return Err(ConfigError::Invalid {
                        backend: "sftp",
                        field: "key_path",
                        why: format!(
                            "no key file at {}: give the path of the private key on this machine",
                            key_path.display()
                        ),
                    });
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(json: &str, expected: Result<&str, ConfigError>) {
        let got = StorageConfig::from_json(json);
        match (got, expected) {
            (Ok(c), Ok(backend)) => assert_eq!(c.backend(), backend),
            (Err(e), Err(want)) => assert_eq!(e, want),
            (got, want) => panic!("{json}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn settings_table() {
        check(r#"{"backend":"local","root":"/tmp/x"}"#, Ok("local"));
        check(
            r#"{"backend":"ftp","root":"/tmp/x"}"#,
            Err(ConfigError::UnknownBackend("ftp".into())),
        );
        check(r#"{"root":"/tmp/x"}"#, Err(ConfigError::MissingBackend));
        check(
            r#"{"backend":"s3","bucket":"b","access_key":"a","secret_key":"s"}"#,
            Ok("s3"),
        );
        check(
            r#"{"backend":"s3","bucket":"","access_key":"a","secret_key":"s"}"#,
            Err(ConfigError::Missing {
                backend: "s3",
                field: "bucket",
            }),
        );
        check(
            r#"{"backend":"s3","endpoint":"minio:9000","bucket":"b","access_key":"a","secret_key":"s"}"#,
            Err(ConfigError::Invalid {
                backend: "s3",
                field: "endpoint",
                why: "\"minio:9000\" is not a url: write it as https://host[:port]".into(),
            }),
        );
        check(
            r#"{"backend":"sftp","endpoint":"h","user":"u","key_path":"/nonexistent/key","root":"/r"}"#,
            Err(ConfigError::Invalid {
                backend: "sftp",
                field: "key_path",
                why: "no key file at /nonexistent/key: give the path of the private key on this machine".into(),
            }),
        );
        check(
            r#"{"backend":"gcs","bucket":"b","credential":"not json nor base64!"}"#,
            Err(ConfigError::Invalid {
                backend: "gcs",
                field: "credential",
                why: "it is neither a service-account json key nor its base64: paste the key file's content".into(),
            }),
        );
    }

    #[test]
    fn default_is_the_local_directory() {
        assert_eq!(
            StorageConfig::default(),
            StorageConfig::Local {
                root: PathBuf::from("./callrec-data/storage")
            }
        );
    }

    #[test]
    fn credentials_stay_out_of_debug_and_json() {
        let c = StorageConfig::from_json(
            r#"{"backend":"s3","bucket":"b","access_key":"AKID","secret_key":"very-secret"}"#,
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("very-secret"));
        assert!(!serde_json::to_string(&c).unwrap().contains("very-secret"));
        assert!(!c.describe().contains("very-secret"));
    }
}
