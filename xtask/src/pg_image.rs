//! `cargo xtask pg-image`: a local Docker image of PostgreSQL 15 with pgvector 0.8.0, built
//! from Debian's packages without pulling anything from an image registry.
//!
//! debootstrap (minbase) installs Debian bookworm into a temporary folder, `postgresql-15` is
//! installed into it, pgvector is built inside it from Debian trixie's `pgvector` source
//! package against `postgresql-server-dev-15` (the build dependencies are purged afterwards),
//! the entrypoint `docker/postgres-pgvector/entrypoint.sh` is added, and the folder becomes an
//! image through the Docker API's import (bollard, as `docker import` does). The image is then started once to check that it prints the
//! ready lines testcontainers' Postgres module waits for and that `CREATE EXTENSION vector`
//! works. The Debian mirror is the one of this machine's apt configuration.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::{StreamExt as _, TryStreamExt as _};
use pg_server::bollard::Docker;
use pg_server::bollard::container::LogOutput;
use pg_server::bollard::errors::Error as BollardError;
use pg_server::bollard::exec::StartExecResults;
use pg_server::bollard::models::{ContainerCreateBody, ExecConfig};
use pg_server::bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptionsBuilder, InspectContainerOptions, LogsOptionsBuilder,
    RemoveImageOptions, StartContainerOptions,
};

/// The Debian release the image is made of.
const SUITE: &str = "bookworm";
/// The PostgreSQL major version, as packaged by that release.
const PG_MAJOR: u32 = 15;
/// The Debian release whose `pgvector` source package is built.
const PGVECTOR_SUITE: &str = "trixie";
const PGVECTOR_VERSION: &str = "0.8.0";
const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";
const ENTRYPOINT: &str = include_str!("../../docker/postgres-pgvector/entrypoint.sh");
const READY_LINE: &str = "database system is ready to accept connections";
/// The PATH inside the chroot and the image.
const IMAGE_PATH: &str =
    "/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const STEPS: usize = 7;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

#[derive(Debug, clap::Args)]
pub struct PgImage {
    /// The image tag to build.
    #[arg(long, default_value = pg_server::LOCAL_IMAGE)]
    pub tag: String,
    /// Build even when the tag already exists (the old image is replaced).
    #[arg(long)]
    pub force: bool,
}

impl PgImage {
    pub fn run(self) -> Result<()> {
        let started = Instant::now();
        let _ = ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst));
        let mut p = Progress::new();

        p.step("checking Docker and the build tools");
        let engine = Engine::connect()?;
        let server = engine.version()?;
        let old = engine.image_id(&self.tag)?;
        if let Some(id) = &old
            && !self.force
        {
            println!(
                "image {} already exists ({}); nothing to do (use --force to rebuild)",
                self.tag,
                short_id(id)
            );
            return Ok(());
        }
        if !nix::unistd::geteuid().is_root() {
            bail!(
                "building the image needs root (debootstrap and chroot): run `sudo -E cargo xtask pg-image`"
            );
        }
        let sh = xshell::Shell::new()?;
        crate::system::ensure(&sh, "debootstrap", crate::system::installs())?;
        let debootstrap = find_program("debootstrap").context(
            "debootstrap not found; install it (Debian/Ubuntu: `apt-get install -y debootstrap`)",
        )?;
        let mirror = debian_mirror()?;
        p.done(&format!("Docker {server}; mirror {mirror}"));

        let work = tempfile::Builder::new()
            .prefix("pg-image-")
            .tempdir()
            .context("creating a work folder under the system's temp dir (TMPDIR)")?;
        let mut build = Build {
            root: work.path().join("rootfs"),
            log: work.path().join("build.log"),
            proc_mounted: false,
        };
        let result = build.run(&mut p, &engine, &debootstrap, &mirror, &self.tag);
        if let Err(e) = build.unmount() {
            // Never delete through a mount: leave the work folder for the user.
            let _ = work.keep();
            return Err(e.context(result.err().map(|r| format!("{r:#}")).unwrap_or_default()));
        }
        drop(work);
        result?;

        if let Some(old) = old
            && engine.image_id(&self.tag)?.as_deref() != Some(old.as_str())
        {
            // The tag moved to the new image; the old one is left untagged. Remove it unless
            // a container still uses it.
            let _ = engine.remove_image(&old);
        }

        p.step("starting the image once (ready lines, CREATE EXTENSION vector)");
        let (startup, version) = smoke_test(&engine, &self.tag)?;
        p.done(&format!(
            "ready in {:.1} s; pgvector {version}",
            startup.as_secs_f64()
        ));

        let size = engine.image_size(&self.tag)?;
        println!(
            "\nbuilt {} in {:.0} s: PostgreSQL {PG_MAJOR} + pgvector {PGVECTOR_VERSION}, {:.0} MB",
            self.tag,
            started.elapsed().as_secs_f64(),
            size as f64 / 1e6
        );
        println!(
            "use it in tests: DATASTORAGE_TEST_DB=docker DATASTORAGE_TEST_IMAGE={}",
            self.tag
        );
        Ok(())
    }
}

/// The root file system under construction, and the log of every command run on it.
struct Build {
    root: PathBuf,
    log: PathBuf,
    proc_mounted: bool,
}

impl Build {
    fn run(
        &mut self,
        p: &mut Progress,
        engine: &Engine,
        debootstrap: &Path,
        mirror: &str,
        tag: &str,
    ) -> Result<()> {
        let root = self.root.clone();

        p.step(&format!("debootstrap --variant=minbase {SUITE}"));
        let mut c = Command::new(debootstrap);
        c.args(["--variant=minbase", SUITE]).arg(&root).arg(mirror);
        self.exec(&mut c, "debootstrap")?;
        p.done(&du(&root));

        p.step(&format!("installing postgresql-{PG_MAJOR}"));
        self.prepare_chroot()?;
        self.chroot(&["apt-get", "update", "-qq"])?;
        // postgresql-common would create and start a cluster `main`; the entrypoint makes one.
        self.chroot(&[
            "apt-get",
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            &format!("postgresql-{PG_MAJOR}"),
        ])?;
        p.done(&du(&root));

        p.step(&format!(
            "building pgvector {PGVECTOR_VERSION} from Debian {PGVECTOR_SUITE}'s source package"
        ));
        self.build_pgvector(mirror)?;
        p.done(&du(&root));

        p.step("adding the entrypoint; removing caches and documentation");
        self.finish_rootfs()?;
        self.verify()?;
        self.unmount()?;
        p.done(&du(&root));

        p.step(&format!("importing the root file system → {tag}"));
        self.import(engine, tag)?;
        p.done(&format!("{:.0} MB", engine.image_size(tag)? as f64 / 1e6));
        Ok(())
    }

    /// Files and mounts a package installation inside a chroot needs.
    fn prepare_chroot(&mut self) -> Result<()> {
        let root = &self.root;
        // Name resolution for apt (the chroot shares the host's network).
        let resolv = fs::read("/etc/resolv.conf").unwrap_or_default();
        write(&root.join("etc/resolv.conf"), &resolv, 0o644)?;
        // No service may start inside the chroot.
        write(
            &root.join("usr/sbin/policy-rc.d"),
            b"#!/bin/sh\nexit 101\n",
            0o755,
        )?;
        // The entrypoint creates the cluster at first start, in PGDATA.
        write(
            &root.join("etc/postgresql-common/createcluster.conf"),
            b"create_main_cluster = false\n",
            0o644,
        )?;
        let proc_dir = root.join("proc");
        fs::create_dir_all(&proc_dir)?;
        let mut mount = Command::new("mount");
        mount.args(["-t", "proc", "proc"]).arg(&proc_dir);
        self.exec(&mut mount, "mount proc")?;
        self.proc_mounted = true;
        Ok(())
    }

    fn build_pgvector(&mut self, mirror: &str) -> Result<()> {
        let before = self.installed_packages()?;
        let server_dev = format!("postgresql-server-dev-{PG_MAJOR}");
        self.chroot(&[
            "apt-get",
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            &server_dev,
            "build-essential",
            "dpkg-dev",
        ])?;

        // A private apt state for the source package, so the image's own lists stay bookworm's.
        let work = "/tmp/pgvector";
        for d in ["lists/partial", "cache/archives/partial", "src"] {
            fs::create_dir_all(self.root.join(&work[1..]).join(d))?;
        }
        write(
            &self.root.join(&work[1..]).join("sources.list"),
            format!("deb-src [signed-by={KEYRING}] {mirror} {PGVECTOR_SUITE} main\n").as_bytes(),
            0o644,
        )?;
        let private = [
            "-o",
            &format!("Dir::Etc::SourceList={work}/sources.list"),
            "-o",
            "Dir::Etc::SourceParts=/dev/null",
            "-o",
            &format!("Dir::State::Lists={work}/lists"),
            "-o",
            &format!("Dir::Cache={work}/cache"),
            "-o",
            "APT::Sandbox::User=root",
        ]
        .map(str::to_owned);
        let mut update: Vec<&str> = vec!["apt-get"];
        update.extend(private.iter().map(String::as_str));
        update.extend(["update", "-qq"]);
        self.chroot(&update)?;
        let src = format!("{work}/src");
        let mut source: Vec<&str> = vec!["env", "-C", &src, "apt-get"];
        source.extend(private.iter().map(String::as_str));
        source.extend(["source", "-qq", "pgvector"]);
        self.chroot(&source)?;

        let tree = format!("{src}/pgvector-{PGVECTOR_VERSION}");
        if !self.root.join(&tree[1..]).is_dir() {
            let found: Vec<String> = fs::read_dir(self.root.join(&src[1..]))?
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            bail!(
                "Debian {PGVECTOR_SUITE}'s pgvector source package is not {PGVECTOR_VERSION} (got: {}); \
                 update PGVECTOR_VERSION in xtask/src/pg_image.rs if the newer version is wanted",
                found.join(", ")
            );
        }
        let pg_config = format!("PG_CONFIG=/usr/lib/postgresql/{PG_MAJOR}/bin/pg_config");
        let jobs = format!(
            "-j{}",
            std::thread::available_parallelism().map_or(2, |n| n.get())
        );
        // OPTFLAGS= : no -march=native, the image must run on any x86-64 machine.
        self.chroot(&[
            "make",
            "-C",
            &tree,
            "USE_PGXS=1",
            &pg_config,
            "OPTFLAGS=",
            &jobs,
        ])?;
        self.chroot(&["make", "-C", &tree, "USE_PGXS=1", &pg_config, "install"])?;

        // Purge exactly what the build added.
        let after = self.installed_packages()?;
        let added: Vec<&str> = after
            .iter()
            .filter(|p| !before.contains(p))
            .map(String::as_str)
            .collect();
        if !added.is_empty() {
            let mut purge = vec!["apt-get", "purge", "-y", "-qq"];
            purge.extend(added);
            self.chroot(&purge)?;
        }
        self.chroot(&["apt-get", "autoremove", "--purge", "-y", "-qq"])?;
        fs::remove_dir_all(self.root.join(&work[1..]))?;
        Ok(())
    }

    fn installed_packages(&mut self) -> Result<Vec<String>> {
        let out = self.chroot_output(&["dpkg-query", "-W", "-f", "${Package}\n"])?;
        Ok(out.lines().map(str::to_owned).collect())
    }

    fn finish_rootfs(&mut self) -> Result<()> {
        let root = self.root.clone();
        write(
            &root.join("usr/local/bin/docker-entrypoint.sh"),
            ENTRYPOINT.as_bytes(),
            0o755,
        )?;
        let (uid, gid) = passwd_ids(&root, "postgres")?;
        for dir in [
            "var/lib/postgresql/data",
            "var/run/postgresql",
            "docker-entrypoint-initdb.d",
        ] {
            let path = root.join(dir);
            fs::create_dir_all(&path)?;
            if dir != "docker-entrypoint-initdb.d" {
                std::os::unix::fs::chown(&path, Some(uid), Some(gid))
                    .with_context(|| format!("chown {}", path.display()))?;
            }
        }
        fs::set_permissions(
            root.join("var/lib/postgresql/data"),
            fs::Permissions::from_mode(0o700),
        )?;
        fs::set_permissions(
            root.join("var/run/postgresql"),
            fs::Permissions::from_mode(0o3777),
        )?;

        self.chroot(&["apt-get", "clean"])?;
        for dir in [
            "var/lib/apt/lists",
            "var/cache/apt",
            "var/log",
            "tmp",
            "var/tmp",
            "usr/share/man",
            "usr/share/info",
            "usr/share/locale",
        ] {
            empty_dir(&root.join(dir))?;
        }
        // Keep the copyright files, drop the rest of the documentation.
        remove_docs(&root.join("usr/share/doc"))?;
        fs::remove_file(root.join("usr/sbin/policy-rc.d"))?;
        write(&root.join("etc/resolv.conf"), b"", 0o644)?; // Docker provides its own
        Ok(())
    }

    fn verify(&mut self) -> Result<()> {
        let version = self.chroot_output(&[
            &format!("/usr/lib/postgresql/{PG_MAJOR}/bin/postgres"),
            "--version",
        ])?;
        let control = self.root.join(format!(
            "usr/share/postgresql/{PG_MAJOR}/extension/vector.control"
        ));
        let text = fs::read_to_string(&control)
            .with_context(|| format!("pgvector is not installed: {} missing", control.display()))?;
        if !text.contains(&format!("default_version = '{PGVECTOR_VERSION}'")) {
            bail!(
                "{} does not declare version {PGVECTOR_VERSION}:\n{text}",
                control.display()
            );
        }
        if !self
            .root
            .join(format!("usr/lib/postgresql/{PG_MAJOR}/lib/vector.so"))
            .is_file()
        {
            bail!("pgvector's vector.so is missing from the image");
        }
        self.note(&format!(
            "verified: {}, vector.control {PGVECTOR_VERSION}",
            version.trim()
        ))
    }

    fn import(&mut self, engine: &Engine, tag: &str) -> Result<()> {
        let log = fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.log)?;
        let entrypoint_sha = {
            use sha2::{Digest as _, Sha256};
            hex::encode(Sha256::digest(ENTRYPOINT.as_bytes()))
        };
        let changes = vec![
            "ENTRYPOINT [\"docker-entrypoint.sh\"]".to_owned(),
            "CMD [\"postgres\"]".to_owned(),
            format!("ENV PATH={IMAGE_PATH}"),
            "ENV PGDATA=/var/lib/postgresql/data".to_owned(),
            "ENV LANG=C.UTF-8".to_owned(),
            "EXPOSE 5432".to_owned(),
            format!(
                "LABEL org.opencontainers.image.title=\"PostgreSQL {PG_MAJOR} with pgvector {PGVECTOR_VERSION} (Debian {SUITE})\""
            ),
            format!("LABEL datastorage.pgvector.version={PGVECTOR_VERSION}"),
            format!("LABEL datastorage.entrypoint.sha256={entrypoint_sha}"),
        ];
        engine
            .import(&self.root, log, tag, changes)
            .with_context(|| {
                format!(
                    "importing the root file system as {tag} (tar's messages: {})",
                    self.log.display()
                )
            })
    }

    /// Runs a program inside the chroot with a clean environment.
    fn chroot(&mut self, args: &[&str]) -> Result<()> {
        let mut c = self.chroot_command(args);
        self.exec(&mut c, &args.join(" "))
    }

    fn chroot_output(&mut self, args: &[&str]) -> Result<String> {
        let out = self
            .chroot_command(args)
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("cannot run chroot {}", args.join(" ")))?;
        if !out.status.success() {
            bail!("`{}` in the chroot failed ({})", args.join(" "), out.status);
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn chroot_command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("chroot");
        c.arg(&self.root)
            .args(args)
            .env_clear()
            .env("PATH", IMAGE_PATH)
            .env("HOME", "/root")
            .env("LC_ALL", "C")
            .env("DEBIAN_FRONTEND", "noninteractive");
        c
    }

    /// Runs a command with its output appended to the build log; on failure the error shows
    /// the end of the log.
    fn exec(&mut self, cmd: &mut Command, what: &str) -> Result<()> {
        if INTERRUPTED.load(Ordering::SeqCst) {
            bail!("interrupted");
        }
        self.note(&format!("$ {what}"))?;
        let log = fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.log)?;
        let status = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .status()
            .with_context(|| format!("cannot run `{what}`"))?;
        if INTERRUPTED.load(Ordering::SeqCst) {
            bail!("interrupted");
        }
        if !status.success() {
            let text = fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            bail!(
                "`{what}` failed ({status}); end of its output:\n{}",
                tail.join("\n")
            );
        }
        Ok(())
    }

    fn note(&self, line: &str) -> Result<()> {
        let mut f = fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.log)?;
        writeln!(f, "{line}")?;
        Ok(())
    }

    /// Unmounts what was mounted in the chroot; must succeed before the folder is removed.
    fn unmount(&mut self) -> Result<()> {
        if !self.proc_mounted {
            return Ok(());
        }
        let proc_dir = self.root.join("proc");
        let status = Command::new("umount").arg(&proc_dir).status();
        if !matches!(status, Ok(s) if s.success()) {
            // Busy (a process still runs in the chroot): detach it lazily.
            let lazy = Command::new("umount").arg("-l").arg(&proc_dir).status();
            if !matches!(lazy, Ok(s) if s.success()) {
                bail!(
                    "cannot unmount {}; unmount it and remove {} by hand",
                    proc_dir.display(),
                    self.root.parent().unwrap_or(&self.root).display()
                );
            }
        }
        self.proc_mounted = false;
        Ok(())
    }
}

/// Starts the image like testcontainers does (`-c fsync=off`), waits for the ready line on
/// stdout (temporary server) and on stderr (the real one), and creates the extension.
fn smoke_test(engine: &Engine, tag: &str) -> Result<(Duration, String)> {
    let id = engine.run_detached(tag, &["POSTGRES_PASSWORD=smoke-test"], &["-c", "fsync=off"])?;
    struct Remove<'a>(&'a Engine, String);
    impl Drop for Remove<'_> {
        fn drop(&mut self) {
            let _ = self.0.remove_container(&self.1);
        }
    }
    let _guard = Remove(engine, id.clone());
    let start = Instant::now();
    loop {
        let (stdout, stderr) = engine.logs(&id)?;
        if stdout.contains(READY_LINE) && stderr.contains(READY_LINE) {
            break;
        }
        if !engine.running(&id)? {
            bail!("the container of {tag} exited during startup; its output:\n{stdout}{stderr}");
        }
        if start.elapsed() > Duration::from_secs(90) {
            bail!(
                "the container of {tag} did not print {READY_LINE:?} on both stdout and stderr \
                 within 90 s (testcontainers waits for both); its output:\n{stdout}{stderr}"
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let startup = start.elapsed();
    let (ok, stdout, stderr) = engine.exec(
        &id,
        &[
            "psql",
            "-X",
            "-q",
            "-A",
            "-t",
            "-U",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            "CREATE EXTENSION vector",
            "-c",
            "SELECT extversion FROM pg_extension WHERE extname = 'vector'",
        ],
    )?;
    if !ok {
        bail!("CREATE EXTENSION vector failed in the image:\n{stderr}");
    }
    let version = stdout.trim().to_owned();
    if version != PGVECTOR_VERSION {
        bail!("the image has pgvector {version:?}, expected {PGVECTOR_VERSION}");
    }
    Ok((startup, version))
}

/// The Docker engine, through bollard (the client testcontainers uses), each call within a
/// time limit.
struct Engine {
    docker: Docker,
    rt: tokio::runtime::Runtime,
}

/// Every call but the import (which streams the whole root file system).
const ENGINE_LIMIT: Duration = Duration::from_secs(15);
const IMPORT_LIMIT: Duration = Duration::from_secs(600);

impl Engine {
    fn connect() -> Result<Engine> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let docker = {
            let _guard = rt.enter();
            Docker::connect_with_defaults().map_err(|e| {
                anyhow::anyhow!(
                    "cannot reach Docker ({e}); pg-image needs a Docker engine: start it (e.g. `systemctl start docker`) or set DOCKER_HOST"
                )
            })?
        };
        Ok(Engine { docker, rt })
    }

    /// Runs one call within `limit`.
    fn call<T, E: std::fmt::Display>(
        &self,
        what: &str,
        limit: Duration,
        fut: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T> {
        match self
            .rt
            .block_on(async { tokio::time::timeout(limit, fut).await })
        {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => bail!("Docker: {what}: {e}"),
            Err(_) => bail!(
                "Docker does not answer ({what}) within {} s; check the engine (or DOCKER_HOST)",
                limit.as_secs()
            ),
        }
    }

    /// The engine's version; a clear error when nobody answers.
    fn version(&self) -> Result<String> {
        let v = self
            .call("version", ENGINE_LIMIT, self.docker.version())
            .context("pg-image needs a running Docker engine: start it (e.g. `systemctl start docker`) or set DOCKER_HOST")?;
        Ok(v.version.unwrap_or_else(|| "(unknown version)".to_owned()))
    }

    /// The id of the image `tag`, if it exists.
    fn image_id(&self, tag: &str) -> Result<Option<String>> {
        let inspected = self.rt.block_on(async {
            tokio::time::timeout(ENGINE_LIMIT, self.docker.inspect_image(tag)).await
        });
        match inspected {
            Ok(Ok(image)) => Ok(image.id),
            Ok(Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            })) => Ok(None),
            Ok(Err(e)) => bail!("Docker: inspecting image {tag}: {e}"),
            Err(_) => bail!(
                "Docker does not answer (inspecting image {tag}) within {} s",
                ENGINE_LIMIT.as_secs()
            ),
        }
    }

    fn image_size(&self, tag: &str) -> Result<u64> {
        let image = self.call(
            &format!("inspecting image {tag}"),
            ENGINE_LIMIT,
            self.docker.inspect_image(tag),
        )?;
        image
            .size
            .and_then(|s| u64::try_from(s).ok())
            .with_context(|| format!("cannot read the size of image {tag}"))
    }

    fn remove_image(&self, id: &str) -> Result<()> {
        self.call(
            &format!("removing image {id}"),
            ENGINE_LIMIT,
            self.docker
                .remove_image(id, None::<RemoveImageOptions>, None),
        )
        .map(drop)
    }

    /// `tar` of `root` streamed into the engine's image import (`docker import -`), with
    /// Dockerfile `changes`; tar's messages go to `log`.
    fn import(&self, root: &Path, log: fs::File, tag: &str, changes: Vec<String>) -> Result<()> {
        let (repo, tag_part) = pg_server::split_image(tag);
        self.rt.block_on(async {
            let mut tar = tokio::process::Command::new("tar")
                .args(["--numeric-owner", "-C"])
                .arg(root)
                .args(["-cf", "-", "."])
                .stdout(Stdio::piped())
                .stderr(log)
                .spawn()
                .context("cannot run tar")?;
            let stdout = tar.stdout.take().expect("piped");
            let options = CreateImageOptionsBuilder::new()
                .from_src("-")
                .repo(repo)
                .tag(tag_part)
                .message("cargo xtask pg-image")
                .changes(changes)
                .build();
            let body =
                pg_server::bollard::body_try_stream(tokio_util::io::ReaderStream::new(stdout));
            let imported = tokio::time::timeout(IMPORT_LIMIT, async {
                let mut progress = self.docker.create_image(Some(options), Some(body), None);
                while let Some(item) = progress.next().await {
                    item?;
                }
                Ok::<(), BollardError>(())
            })
            .await;
            let tar_status = tar.wait().await?;
            match imported {
                Ok(Ok(())) => {}
                Ok(Err(e)) => bail!("the import failed: {e}"),
                Err(_) => bail!(
                    "the import did not finish within {} s",
                    IMPORT_LIMIT.as_secs()
                ),
            }
            if !tar_status.success() {
                bail!("tar of the root file system failed ({tar_status})");
            }
            Ok(())
        })
    }

    /// Creates and starts a container of `image` with `env` and `cmd`; returns its id.
    fn run_detached(&self, image: &str, env: &[&str], cmd: &[&str]) -> Result<String> {
        let body = ContainerCreateBody {
            image: Some(image.to_owned()),
            env: Some(env.iter().map(|s| (*s).to_owned()).collect()),
            cmd: Some(cmd.iter().map(|s| (*s).to_owned()).collect()),
            ..Default::default()
        };
        let created = self.call(
            &format!("creating a container of {image}"),
            ENGINE_LIMIT,
            self.docker
                .create_container(None::<CreateContainerOptions>, body),
        )?;
        let started = self.call(
            &format!("starting a container of {image}"),
            ENGINE_LIMIT,
            self.docker
                .start_container(&created.id, None::<StartContainerOptions>),
        );
        if let Err(e) = started {
            let _ = self.remove_container(&created.id);
            return Err(e);
        }
        Ok(created.id)
    }

    /// Everything the container wrote so far, as (stdout, stderr).
    fn logs(&self, id: &str) -> Result<(String, String)> {
        let options = LogsOptionsBuilder::new().stdout(true).stderr(true).build();
        let chunks: Vec<LogOutput> = self.call(
            "reading a container's output",
            ENGINE_LIMIT,
            self.docker.logs(id, Some(options)).try_collect::<Vec<_>>(),
        )?;
        Ok(split_output(chunks))
    }

    fn running(&self, id: &str) -> Result<bool> {
        let c = self.call(
            "inspecting a container",
            ENGINE_LIMIT,
            self.docker
                .inspect_container(id, None::<InspectContainerOptions>),
        )?;
        Ok(c.state.and_then(|s| s.running).unwrap_or(false))
    }

    /// Runs `cmd` in the container; returns (exit code 0, stdout, stderr).
    fn exec(&self, id: &str, cmd: &[&str]) -> Result<(bool, String, String)> {
        let config = ExecConfig {
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            cmd: Some(cmd.iter().map(|s| (*s).to_owned()).collect()),
            ..Default::default()
        };
        let exec = self.call(
            "creating an exec",
            ENGINE_LIMIT,
            self.docker.create_exec(id, config),
        )?;
        let started = self.call(
            "starting an exec",
            ENGINE_LIMIT,
            self.docker.start_exec(&exec.id, None),
        )?;
        let chunks = match started {
            StartExecResults::Attached { output, .. } => self.call(
                "reading an exec's output",
                ENGINE_LIMIT,
                output.try_collect::<Vec<_>>(),
            )?,
            StartExecResults::Detached => Vec::new(),
        };
        let inspected = self.call(
            "inspecting an exec",
            ENGINE_LIMIT,
            self.docker.inspect_exec(&exec.id),
        )?;
        let (stdout, stderr) = split_output(chunks);
        Ok((inspected.exit_code == Some(0), stdout, stderr))
    }

    fn remove_container(&self, id: &str) -> Result<()> {
        self.call(
            "removing a container",
            ENGINE_LIMIT,
            self.docker
                .remove_container(id, Some(pg_server::force_remove())),
        )
    }
}

fn split_output(chunks: Vec<LogOutput>) -> (String, String) {
    let (mut out, mut err) = (String::new(), String::new());
    for c in chunks {
        match c {
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                out.push_str(&String::from_utf8_lossy(&message))
            }
            LogOutput::StdErr { message } => err.push_str(&String::from_utf8_lossy(&message)),
            LogOutput::StdIn { .. } => {}
        }
    }
    (out, err)
}

fn short_id(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    &id[..id.len().min(12)]
}

/// The first Debian archive URI of this machine's apt configuration, deb822 (`URIs:` in
/// `sources.list.d/*.sources`) or one-line format (`deb URI suite …`).
pub fn debian_mirror() -> Result<String> {
    let etc = Path::new("/etc/apt");
    let mut files: Vec<PathBuf> = Vec::new();
    let mut parts: Vec<PathBuf> = fs::read_dir(etc.join("sources.list.d"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    parts.sort();
    files.extend(
        parts
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "sources"))
            .cloned(),
    );
    files.push(etc.join("sources.list"));
    files.extend(
        parts
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "list"))
            .cloned(),
    );
    let mut uris = Vec::new();
    for f in &files {
        let Ok(text) = fs::read_to_string(f) else {
            continue;
        };
        uris.extend(apt_uris(&text));
    }
    uris.into_iter()
        .find(|u| u.trim_end_matches('/').ends_with("/debian"))
        .context(
            "no Debian archive found in the apt configuration (/etc/apt/sources.list, \
             /etc/apt/sources.list.d/); the image is built from Debian's packages",
        )
}

/// The archive URIs of one apt sources file, in either format.
fn apt_uris(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("URIs:") {
            out.extend(rest.split_whitespace().map(str::to_owned));
        } else if let Some(rest) = line.strip_prefix("deb ") {
            let rest = match (rest.find('['), rest.find(']')) {
                (Some(a), Some(b)) if a < b => format!("{}{}", &rest[..a], &rest[b + 1..]),
                _ => rest.to_owned(),
            };
            if let Some(uri) = rest.split_whitespace().next() {
                out.push(uri.to_owned());
            }
        }
    }
    out
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The uid and gid of `user` in the chroot's /etc/passwd.
fn passwd_ids(root: &Path, user: &str) -> Result<(u32, u32)> {
    let passwd = fs::read_to_string(root.join("etc/passwd"))?;
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&user) && f.len() > 3)
        .and_then(|f| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
        .with_context(|| format!("no user `{user}` in the image (postgresql-common creates it)"))
}

fn write(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// Removes everything inside `dir`, keeping `dir`.
fn empty_dir(dir: &Path) -> Result<()> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let p = e.path();
        if e.file_type()?.is_dir() {
            fs::remove_dir_all(&p)
        } else {
            fs::remove_file(&p)
        }
        .with_context(|| format!("removing {}", p.display()))?;
    }
    Ok(())
}

/// Removes every file under `/usr/share/doc` except the `copyright` files.
fn remove_docs(dir: &Path) -> Result<()> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let p = e.path();
        let t = e.file_type()?;
        if t.is_dir() {
            remove_docs(&p)?;
            let _ = fs::remove_dir(&p); // only when now empty
        } else if e.file_name() != "copyright" {
            fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
        }
    }
    Ok(())
}

fn du(root: &Path) -> String {
    let out = Command::new("du").args(["-sm", "-x"]).arg(root).output();
    match out {
        Ok(o) if o.status.success() => {
            let mb = String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .next()
                .unwrap_or("?")
                .to_owned();
            format!("root file system {mb} MB")
        }
        _ => String::new(),
    }
}

/// `==> [n/N] step` lines with each step's duration.
struct Progress {
    n: usize,
    since: Instant,
}

impl Progress {
    fn new() -> Self {
        Self {
            n: 0,
            since: Instant::now(),
        }
    }

    fn step(&mut self, what: &str) {
        self.n += 1;
        self.since = Instant::now();
        println!("==> [{}/{STEPS}] {what}", self.n);
    }

    fn done(&self, detail: &str) {
        let sep = if detail.is_empty() { "" } else { "; " };
        println!(
            "    done in {:.1} s{sep}{detail}",
            self.since.elapsed().as_secs_f64()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_archive_uris_in_both_apt_formats() {
        let deb822 = "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n\n\
                      Types: deb\nURIs: http://mirror.example/debian-security\n";
        assert_eq!(
            apt_uris(deb822),
            [
                "http://mirror.example/debian",
                "http://mirror.example/debian-security"
            ]
        );
        let one_line = "# comment\ndeb [arch=amd64 signed-by=/k.gpg] https://m.example/debian/ bookworm main\n\
                        deb-src http://m.example/debian bookworm main\n";
        assert_eq!(apt_uris(one_line), ["https://m.example/debian/"]);
    }
}
