//! A private PostgreSQL cluster for when no `DATABASE_URL` is given.
//!
//! The cluster lives in a data directory inside the project, listens only on a Unix
//! socket in a directory no other user can enter, and is stopped when the server stops.
//! PostgreSQL refuses to run as root, so when we are root the cluster runs as the
//! `postgres` system user (created by Debian's `postgresql` package).

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The one-line instruction shown when the server binaries are missing.
pub const INSTALL_HINT: &str = "PostgreSQL server binaries not found on PATH or in /usr/lib/postgresql/*/bin; install them with: sudo apt-get install -y postgresql (or set DATABASE_URL to an existing database)";

const SUPERUSER: &str = "rigshift";
const SYSTEM_USER_WHEN_ROOT: &str = "postgres";

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedPgError {
    #[error("{INSTALL_HINT}")]
    NotInstalled,
    #[error("running as root, but the '{SYSTEM_USER_WHEN_ROOT}' system user that should own the private cluster does not exist; install the postgresql package or set DATABASE_URL")]
    NoSystemUser,
    #[error("could not prepare {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}); see {log} for PostgreSQL's own messages")]
    Command {
        command: String,
        status: String,
        log: PathBuf,
    },
}

/// Where the PostgreSQL server programs are.
#[derive(Clone, Debug)]
pub struct PgBinaries {
    pub bin_dir: PathBuf,
}

impl PgBinaries {
    /// Finds `initdb` and `pg_ctl`: first on `PATH`, then the newest `/usr/lib/postgresql/*/bin`.
    pub fn locate() -> Result<Self, EmbeddedPgError> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let on_path = std::env::split_paths(&path);
        let debian = debian_bin_dirs(Path::new("/usr/lib/postgresql"));
        let found = on_path
            .chain(debian)
            .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
            .ok_or(EmbeddedPgError::NotInstalled)?;
        // PATH may hold only symlinks to a few programs; the directory they point into
        // has the whole set (postgres, pgbench, ...).
        let bin_dir = fs::canonicalize(found.join("initdb"))
            .ok()
            .and_then(|real| real.parent().map(Path::to_path_buf))
            .unwrap_or(found);
        Ok(Self { bin_dir })
    }
}

/// `/usr/lib/postgresql/<major>/bin` directories, newest major version first.
fn debian_bin_dirs(root: &Path) -> Vec<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((major, e.path().join("bin")))
        })
        .collect();
    versions.sort_by_key(|(major, _)| std::cmp::Reverse(*major));
    versions.into_iter().map(|(_, p)| p).collect()
}

/// A running private cluster. Dropping it stops PostgreSQL (fast shutdown), so a server
/// that exits for any reason leaves no PostgreSQL process behind.
#[derive(Debug)]
pub struct EmbeddedPg {
    bins: PgBinaries,
    data_dir: PathBuf,
    socket_dir: PathBuf,
    log_file: PathBuf,
    run_as: Option<String>,
    stopped: bool,
    /// It was already running when we came (another server, or one that was killed).
    adopted: bool,
}

impl EmbeddedPg {
    /// Initialises the cluster under `root` on first use and starts it, or adopts one
    /// left running by a server that was killed without a chance to stop it.
    pub fn start(root: &Path) -> Result<Self, EmbeddedPgError> {
        let (pg, owner) = Self::open(root)?;
        if !pg.data_dir.join("PG_VERSION").exists() {
            pg.initdb(owner)?;
        }
        let mut pg = pg;
        if pg.is_running() {
            pg.adopted = true;
        } else {
            pg.pg_ctl_start()?;
        }
        Ok(pg)
    }

    /// Finds the binaries and prepares the directories under `root`, starting nothing.
    /// Returns the handle and the system user that must own the files (when we are root).
    fn open(root: &Path) -> Result<(Self, Option<(u32, u32)>), EmbeddedPgError> {
        let bins = PgBinaries::locate()?;
        let root = absolute(root)?;
        let run_as = if is_root() {
            Some(SYSTEM_USER_WHEN_ROOT.to_string())
        } else {
            None
        };
        let owner = match &run_as {
            Some(user) => Some(system_user_ids(user).ok_or(EmbeddedPgError::NoSystemUser)?),
            None => None,
        };

        let data_dir = root.join("pg");
        let socket_dir = socket_dir_for(&root);
        let log_file = root.join("postgresql.log");
        for dir in [&root, &socket_dir] {
            fs::create_dir_all(dir).map_err(|source| io_err(dir, source))?;
        }
        // Only the cluster's owner may enter the socket directory: with trust
        // authentication on the socket, this directory is the access control.
        fs::set_permissions(&socket_dir, fs::Permissions::from_mode(0o700))
            .map_err(|source| io_err(&socket_dir, source))?;
        if !log_file.exists() {
            fs::write(&log_file, b"").map_err(|source| io_err(&log_file, source))?;
        }
        if let Some((uid, gid)) = owner {
            for path in [&socket_dir, &log_file] {
                std::os::unix::fs::chown(path, Some(uid), Some(gid))
                    .map_err(|source| io_err(path, source))?;
            }
            // Repair ownership only when it is wrong (e.g. files copied in by root).
            use std::os::unix::fs::MetadataExt;
            let owned_by = fs::metadata(&data_dir).map(|m| m.uid()).ok();
            if owned_by.is_some_and(|owner_uid| owner_uid != uid) {
                chown_recursive(&data_dir, uid, gid)?;
            }
        }

        let pg = Self {
            bins,
            data_dir,
            socket_dir,
            log_file,
            run_as,
            stopped: false,
            adopted: false,
        };
        Ok((pg, owner))
    }

    /// The URL that reaches `database` on this cluster over its Unix socket.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{SUPERUSER}@localhost/{database}?host={}",
            self.socket_dir.display()
        )
    }

    /// Where the PostgreSQL programs (pgbench and psql among them) are.
    pub fn bin_dir(&self) -> &Path {
        &self.bins.bin_dir
    }

    /// Whether the cluster was already running when [`EmbeddedPg::start`] was called.
    pub fn adopted(&self) -> bool {
        self.adopted
    }

    /// Leaves the cluster running when this handle is dropped (for `server pg-start`).
    pub fn detach(&mut self) {
        self.stopped = true;
    }

    /// Stops a cluster started earlier in `root` (for `server pg-stop`); a cluster that
    /// is not running is fine.
    pub fn stop_existing(root: &Path) -> Result<(), EmbeddedPgError> {
        let (mut pg, _) = Self::open(root)?;
        if pg.is_running() {
            pg.stop()
        } else {
            pg.detach();
            Ok(())
        }
    }

    /// Stops PostgreSQL and waits until it has shut down.
    pub fn stop(&mut self) -> Result<(), EmbeddedPgError> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let data = self.data_dir.clone();
        self.run(
            "pg_ctl",
            [
                OsStr::new("stop"),
                OsStr::new("-D"),
                data.as_os_str(),
                OsStr::new("-m"),
                OsStr::new("fast"),
                OsStr::new("-w"),
            ],
        )
    }

    fn initdb(&self, owner: Option<(u32, u32)>) -> Result<(), EmbeddedPgError> {
        fs::create_dir_all(&self.data_dir).map_err(|source| io_err(&self.data_dir, source))?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&self.data_dir, Some(uid), Some(gid))
                .map_err(|source| io_err(&self.data_dir, source))?;
        }
        let data = self.data_dir.clone();
        self.run(
            "initdb",
            [
                OsStr::new("-D"),
                data.as_os_str(),
                OsStr::new("--username"),
                OsStr::new(SUPERUSER),
                OsStr::new("--auth"),
                OsStr::new("trust"),
                OsStr::new("--encoding"),
                OsStr::new("UTF8"),
                OsStr::new("--locale"),
                OsStr::new("C"),
            ],
        )
    }

    fn pg_ctl_start(&self) -> Result<(), EmbeddedPgError> {
        // No TCP listener at all: the cluster is reachable only through the private socket.
        let options = format!(
            "-c listen_addresses='' -c unix_socket_directories='{}' -c unix_socket_permissions=0700 -c max_connections=200 -c shared_buffers=256MB",
            self.socket_dir.display()
        );
        let data = self.data_dir.clone();
        let log = self.log_file.clone();
        self.run(
            "pg_ctl",
            [
                OsStr::new("start"),
                OsStr::new("-D"),
                data.as_os_str(),
                OsStr::new("-l"),
                log.as_os_str(),
                OsStr::new("-o"),
                OsStr::new(&options),
                OsStr::new("-w"),
                OsStr::new("-t"),
                OsStr::new("60"),
            ],
        )
    }

    fn is_running(&self) -> bool {
        let data = self.data_dir.clone();
        self.command(
            "pg_ctl",
            [OsStr::new("status"), OsStr::new("-D"), data.as_os_str()],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
    }

    fn command<I, S>(&self, program: &str, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let exe = self.bins.bin_dir.join(program);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.arg("-u").arg(user).arg("--").arg(exe);
                c
            }
            None => Command::new(exe),
        };
        cmd.args(args);
        // Keep PostgreSQL out of the server's process group, so a Ctrl-C aimed at the
        // server reaches the server, which then stops PostgreSQL in order.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        cmd
    }

    fn run<I, S>(&self, program: &str, args: I) -> Result<(), EmbeddedPgError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let status = self
            .command(program, args)
            .stdout(Stdio::null())
            .status()
            .map_err(|source| io_err(&self.bins.bin_dir.join(program), source))?;
        if status.success() {
            Ok(())
        } else {
            Err(EmbeddedPgError::Command {
                command: program.to_string(),
                status: status.to_string(),
                log: self.log_file.clone(),
            })
        }
    }
}

impl Drop for EmbeddedPg {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("rigshift: could not stop the private PostgreSQL cleanly: {e}");
        }
    }
}

/// Unix socket paths are limited to ~107 bytes; fall back to a per-project directory
/// under /tmp when the project lives at a deep path.
fn socket_dir_for(root: &Path) -> PathBuf {
    let preferred = root.join("sock");
    if preferred.as_os_str().len() + "/.s.PGSQL.5432".len() < 100 {
        return preferred;
    }
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    root.hash(&mut h);
    PathBuf::from(format!("/tmp/rigshift-pg-{:016x}", h.finish()))
}

fn absolute(p: &Path) -> Result<PathBuf, EmbeddedPgError> {
    fs::create_dir_all(p).map_err(|source| io_err(p, source))?;
    fs::canonicalize(p).map_err(|source| io_err(p, source))
}

fn io_err(path: &Path, source: std::io::Error) -> EmbeddedPgError {
    EmbeddedPgError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn chown_recursive(path: &Path, uid: u32, gid: u32) -> Result<(), EmbeddedPgError> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(|source| io_err(path, source))?;
    if path.is_dir() && !path.is_symlink() {
        for entry in fs::read_dir(path).map_err(|source| io_err(path, source))? {
            let entry = entry.map_err(|source| io_err(path, source))?;
            chown_recursive(&entry.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// Whether this process runs as root: /proc/self belongs to the effective user.
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// Looks a system user up in /etc/passwd (uid, gid).
fn system_user_ids(name: &str) -> Option<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut f = line.split(':');
        if f.next()? != name {
            return None;
        }
        let _pw = f.next()?;
        let uid = f.next()?.parse().ok()?;
        let gid = f.next()?.parse().ok()?;
        Some((uid, gid))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_dirs_are_listed_newest_major_first() {
        let root = std::env::temp_dir().join(format!("rigshift-pgdirs-{}", std::process::id()));
        for v in ["13", "16", "15", "not-a-version"] {
            fs::create_dir_all(root.join(v).join("bin")).unwrap();
        }
        let dirs = debian_bin_dirs(&root);
        assert_eq!(
            dirs,
            vec![
                root.join("16/bin"),
                root.join("15/bin"),
                root.join("13/bin")
            ]
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn socket_dir_stays_inside_the_project_when_short_and_moves_to_tmp_when_long() {
        assert_eq!(
            socket_dir_for(Path::new("/srv/rigshift/.data")),
            PathBuf::from("/srv/rigshift/.data/sock")
        );
        let deep = PathBuf::from(format!("/{}", "d".repeat(120)));
        let dir = socket_dir_for(&deep);
        assert!(
            dir.to_string_lossy().starts_with("/tmp/rigshift-pg-"),
            "{}",
            dir.display()
        );
        assert_eq!(dir, socket_dir_for(&deep), "stable for the same project");
    }

    #[test]
    fn finds_the_postgres_user_in_passwd_format() {
        // root is in every /etc/passwd with uid 0.
        assert_eq!(system_user_ids("root").map(|(uid, _)| uid), Some(0));
        assert_eq!(system_user_ids("no-such-user-rigshift"), None);
    }
}
