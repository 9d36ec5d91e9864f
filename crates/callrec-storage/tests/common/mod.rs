//! Real peers for the storage tests, started on free loopback ports and
//! killed on drop: `s3s-fs` (S3), a private `sshd` (SFTP) and `azurite`
//! (Azure Blob). Each is found on PATH; a test whose peer is missing fails
//! with the install command (scripts/install-test-deps.sh installs them).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use callrec_storage::{HostKeyPolicy, Secret, StorageConfig};
use sha2::{Digest, Sha256};

/// A free TCP port on 127.0.0.1 (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something accepts on 127.0.0.1:`port` (readiness, not timing).
fn wait_listening(port: u16, what: &str, child: &mut Child) {
    for _ in 0..600 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited before listening on port {port}: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not listen on port {port} within 30 s");
}

fn need(binary: &str, install: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let p = dir.join(binary);
        if p.is_file() {
            return p;
        }
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let cargo_bin = Path::new(&home).join(".cargo/bin").join(binary);
    if cargo_bin.is_file() {
        return cargo_bin;
    }
    panic!(
        "test peer {binary} is not on PATH: install it with `{install}` (scripts/install-test-deps.sh)"
    );
}

pub const S3_ACCESS_KEY: &str = "callrec-test-ak";
pub const S3_SECRET_KEY: &str = "callrec-test-sk";

/// An s3s-fs server over a temporary directory; each top-level folder is a
/// bucket. Can be stopped and started again on the same port and data.
pub struct S3Server {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
}

impl S3Server {
    /// A server with the bucket `bucket`, not started yet.
    pub fn new(bucket: &str) -> S3Server {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(bucket)).unwrap();
        S3Server {
            dir,
            port: free_port(),
            child: None,
        }
    }

    /// A running server with the bucket `bucket`.
    pub fn start_new(bucket: &str) -> S3Server {
        let mut s = S3Server::new(bucket);
        s.start();
        s
    }

    pub fn start(&mut self) {
        assert!(self.child.is_none(), "s3s-fs already running");
        let bin = need(
            "s3s-fs",
            "cargo install --locked s3s-fs@0.14.1 --features binary",
        );
        let mut child = Command::new(bin)
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--access-key", S3_ACCESS_KEY, "--secret-key", S3_SECRET_KEY])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start s3s-fs");
        wait_listening(self.port, "s3s-fs", &mut child);
        self.child = Some(child);
    }

    /// Kills the server (SIGKILL: like a crash or a network cut).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn config(&self, bucket: &str) -> StorageConfig {
        StorageConfig::S3 {
            endpoint: self.endpoint(),
            region: "us-east-1".into(),
            bucket: bucket.into(),
            access_key: S3_ACCESS_KEY.into(),
            secret_key: Secret::new(S3_SECRET_KEY),
            prefix: "callrec".into(),
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn run_ok(cmd: &mut Command) {
    let out = cmd.output().expect("run command");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A private sshd on a loopback port with its own host key, accepting a
/// generated client key for the current user; SFTP via internal-sftp.
pub struct SftpServer {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub user: String,
    pub client_key: PathBuf,
    pub root: PathBuf,
    child: Child,
}

impl SftpServer {
    pub fn start() -> SftpServer {
        let sshd = Path::new("/usr/sbin/sshd");
        assert!(
            sshd.is_file(),
            "test peer sshd is missing: install it with `apt-get install -y openssh-server openssh-client`"
        );
        need("ssh", "apt-get install -y openssh-client");
        // sshd refuses to start without its privilege separation directory.
        let _ = std::fs::create_dir_all("/run/sshd");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for key in ["host_key", "client_key"] {
            run_ok(
                Command::new("ssh-keygen")
                    .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                    .arg(d.join(key)),
            );
        }
        std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
        let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_owned();
        let port = free_port();
        let cfg = d.join("sshd_config");
        std::fs::write(
            &cfg,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {host}\nPidFile {pid}\n\
                 AuthorizedKeysFile {auth}\nStrictModes no\nUsePAM no\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 PubkeyAuthentication yes\nPermitRootLogin prohibit-password\n\
                 AllowUsers {user}\nSubsystem sftp internal-sftp\n",
                host = d.join("host_key").display(),
                pid = d.join("sshd.pid").display(),
                auth = d.join("authorized_keys").display(),
            ),
        )
        .unwrap();
        let root = d.join("sftp-root");
        std::fs::create_dir(&root).unwrap();
        let mut child = Command::new(sshd)
            .arg("-f")
            .arg(&cfg)
            .args(["-D", "-e"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sshd");
        wait_listening(port, "sshd", &mut child);
        SftpServer {
            client_key: d.join("client_key"),
            dir,
            port,
            user,
            root,
            child,
        }
    }

    pub fn config(&self) -> StorageConfig {
        StorageConfig::Sftp {
            endpoint: format!("127.0.0.1:{}", self.port),
            user: self.user.clone(),
            key_path: self.client_key.clone(),
            root: self.root.to_string_lossy().into_owned(),
            host_key: HostKeyPolicy::AcceptAny,
        }
    }
}

impl Drop for SftpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Azurite's well-known development account (public, documented by Microsoft).
pub const ACCOUNT: &str = "devstoreaccount1";
pub const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

pub struct Azurite {
    _dir: tempfile::TempDir,
    port: u16,
    child: Child,
}

impl Azurite {
    pub fn start() -> Azurite {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut child = Command::new("azurite-blob")
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            .arg("--location")
            .arg(dir.path())
            .args(["--silent", "--skipApiVersionCheck"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "test peer azurite-blob is not on PATH: install it with `npm install -g azurite`",
            );
        for _ in 0..600 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Azurite {
                    _dir: dir,
                    port,
                    child,
                };
            }
            if let Ok(Some(s)) = child.try_wait() {
                panic!("azurite exited: {s}");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("azurite did not listen within 30 s");
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/{ACCOUNT}", self.port)
    }

    /// Creates a container with a Shared Key signed REST call (OpenDAL has
    /// no call for it, and callrec expects the container to exist).
    pub fn create_container(&self, name: &str) {
        let date = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc2822)
            .unwrap()
            .replace("+0000", "GMT");
        let version = "2021-08-06";
        let to_sign = format!(
            "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{ACCOUNT}/{ACCOUNT}/{name}\nrestype:container"
        );
        let key = base64::engine::general_purpose::STANDARD
            .decode(KEY)
            .unwrap();
        let sig =
            base64::engine::general_purpose::STANDARD.encode(hmac_sha256(&key, to_sign.as_bytes()));
        let req = format!(
            "PUT /{ACCOUNT}/{name}?restype=container HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nx-ms-date: {date}\r\nx-ms-version: {version}\r\nAuthorization: SharedKey {ACCOUNT}:{sig}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        );
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.write_all(req.as_bytes()).unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        assert!(
            resp.starts_with("HTTP/1.1 201"),
            "create container failed: {resp}"
        );
    }

    pub fn config(&self, container: &str) -> StorageConfig {
        StorageConfig::Azure {
            endpoint: self.endpoint(),
            account_name: ACCOUNT.into(),
            account_key: Secret::new(KEY),
            container: container.into(),
            prefix: "callrec".into(),
        }
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&ipad)
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(&opad)
        .chain_update(inner)
        .finalize()
        .to_vec()
}
