//! The Docker server: testcontainers-modules' `Postgres` on a local image, reached only through
//! bollard (testcontainers' own client), with a time limit on every call.
//!
//! [`DockerServer`] removes its container when dropped, and at process exit if it never is
//! (a server kept in a `static`).

use std::collections::HashMap;
use std::time::Duration;

use testcontainers::bollard::Docker;
use testcontainers::bollard::query_parameters::{
    ListContainersOptions, RemoveContainerOptions, RemoveContainerOptionsBuilder,
};
use testcontainers::runners::AsyncRunner as _;
use testcontainers::{ContainerAsync, ImageExt as _};
use testcontainers_modules::postgres::Postgres;

use crate::{Error, cleanup, runtime};

/// The variable naming the image (`name:tag`) of the Docker provider.
pub const IMAGE_ENV: &str = "DATASTORAGE_TEST_IMAGE";
/// The image used when [`IMAGE_ENV`] is not set.
pub const DEFAULT_IMAGE: &str = "pgvector/pgvector:pg16";
/// The tag `cargo xtask pg-image` builds by default: PostgreSQL 15 and pgvector 0.8.0.
pub const LOCAL_IMAGE: &str = "datastorage/postgres-pgvector:15";
/// Every container started here carries `host:pid` of its owner, so that containers of a
/// killed process can be swept by the next one.
const OWNER_LABEL: &str = "datastorage.test-db.owner";
/// testcontainers-modules' `Postgres` defaults: user, password and database `postgres`.
const PASSWORD: &str = "postgres";
const PING_LIMIT: Duration = Duration::from_secs(3);
/// Creating the container, the server's first start and its ready line. A pull (only when
/// the provider was chosen explicitly) counts too.
const START_LIMIT: Duration = Duration::from_secs(300);
const READY_LIMIT: Duration = Duration::from_secs(90);
const REMOVE_LIMIT: Duration = Duration::from_secs(30);

/// The image of the Docker provider: [`IMAGE_ENV`], else [`DEFAULT_IMAGE`].
pub fn configured_image() -> String {
    std::env::var(IMAGE_ENV)
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_IMAGE.to_owned())
}

/// Splits `[registry[:port]/]name[:tag]` into name and tag (`latest` when absent).
pub fn split_image(image: &str) -> (&str, &str) {
    let last_slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[last_slash..].rfind(':') {
        Some(i) => (&image[..last_slash + i], &image[last_slash + i + 1..]),
        None => (image, "latest"),
    }
}

/// Whether the Docker provider can start a container of an image right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerStatus {
    /// No Docker engine answered; the reason.
    Unreachable(String),
    /// The engine answers, but the image is not in its local store.
    ImageMissing,
    /// The engine answers and has the image.
    Ready,
}

impl DockerStatus {
    /// A short phrase for messages, e.g. "Docker does not answer (…)".
    pub fn describe(&self, image: &str) -> String {
        match self {
            DockerStatus::Unreachable(why) => format!("Docker does not answer ({why})"),
            DockerStatus::ImageMissing => {
                format!("Docker answers, but image {image} is not present locally")
            }
            DockerStatus::Ready => format!("Docker answers and has image {image}"),
        }
    }
}

/// Asks the Docker engine (as configured by `DOCKER_HOST`, else the local socket) whether it
/// answers and has `image`, within a few seconds. Never pulls.
pub async fn docker_status(image: &str) -> DockerStatus {
    let image = image.to_owned();
    runtime::run(async move { status(&image).await }).await
}

async fn status(image: &str) -> DockerStatus {
    let docker = match Docker::connect_with_defaults() {
        Ok(d) => d,
        Err(e) => return DockerStatus::Unreachable(e.to_string()),
    };
    match tokio::time::timeout(PING_LIMIT, docker.ping()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return DockerStatus::Unreachable(e.to_string()),
        Err(_) => {
            return DockerStatus::Unreachable(format!(
                "no answer within {} s",
                PING_LIMIT.as_secs()
            ));
        }
    }
    match tokio::time::timeout(PING_LIMIT, docker.inspect_image(image)).await {
        Ok(Ok(_)) => DockerStatus::Ready,
        Ok(Err(testcontainers::bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        })) => DockerStatus::ImageMissing,
        Ok(Err(e)) => DockerStatus::Unreachable(e.to_string()),
        Err(_) => DockerStatus::Unreachable(format!(
            "no answer about image {image} within {} s",
            PING_LIMIT.as_secs()
        )),
    }
}

/// A PostgreSQL container started with testcontainers; removed when dropped or at exit.
pub struct DockerServer {
    container: Option<ContainerAsync<Postgres>>,
    image: String,
    host: String,
    port: u16,
    exit_key: u64,
}

impl std::fmt::Debug for DockerServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerServer")
            .field("id", &self.container.as_ref().map(|c| c.id().to_owned()))
            .field("image", &self.image)
            .field("host", &self.host)
            .field("port", &self.port)
            .finish()
    }
}

impl DockerServer {
    /// Starts a container of `image` (`name:tag`) with durability off (`fsync=off`), waits
    /// until the server accepts connections, and returns it.
    ///
    /// The image must be compatible with the official `postgres` image (environment
    /// variables, ready line); `pgvector/pgvector:*` and `cargo xtask pg-image`'s are. A
    /// missing image is pulled; call [`docker_status`] first to avoid that.
    pub async fn start(image: &str) -> Result<DockerServer, Error> {
        let image = image.to_owned();
        runtime::run(async move { start(image).await }).await
    }

    /// The container's image.
    pub fn image(&self) -> &str {
        &self.image
    }

    /// The container's id.
    pub fn id(&self) -> &str {
        self.container.as_ref().map_or("", |c| c.id())
    }

    /// The host port mapped to the server's 5432.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `db` as the superuser `postgres`.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://postgres:{PASSWORD}@{}:{}/{db}",
            self.host, self.port
        )
    }
}

impl Drop for DockerServer {
    fn drop(&mut self) {
        if let Some(container) = self.container.take() {
            cleanup::cancel(self.exit_key);
            let id = container.id().to_owned();
            let removed = runtime::block_on(async move { container.rm().await }, REMOVE_LIMIT);
            if let Some(Err(e)) = removed {
                eprintln!("pg-server: could not remove container {id}: {e}");
            }
        }
    }
}

async fn start(image: String) -> Result<DockerServer, Error> {
    let docker = Docker::connect_with_defaults().map_err(|e| {
        Error::Unavailable(format!(
            "cannot reach Docker: {e}\n  start the Docker engine (or set DOCKER_HOST)"
        ))
    })?;
    sweep_stale(&docker).await;

    let (name, tag) = split_image(&image);
    let request = Postgres::default()
        .with_name(name)
        .with_tag(tag)
        .with_cmd([
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=300",
        ])
        .with_label(OWNER_LABEL, owner().unwrap_or_default())
        .with_startup_timeout(READY_LIMIT);
    let container = match tokio::time::timeout(START_LIMIT, request.start()).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            return Err(Error::Unavailable(format!(
                "cannot start a container of image {image}: {e}\n  {}",
                image_hint()
            )));
        }
        Err(_) => {
            return Err(Error::Unavailable(format!(
                "a container of image {image} did not become ready within {} s\n  {}",
                START_LIMIT.as_secs(),
                image_hint()
            )));
        }
    };
    let id = container.id().to_owned();
    let exit_key = cleanup::at_exit(move || remove(id));
    let port = container.get_host_port_ipv4(5432).await.map_err(|e| {
        Error::Unavailable(format!("container of {image}: no host port for 5432: {e}"))
    })?;
    let host = match container.get_host().await {
        Ok(h) => h.to_string(),
        Err(_) => "127.0.0.1".to_owned(),
    };
    Ok(DockerServer {
        container: Some(container),
        image,
        host,
        port,
        exit_key,
    })
}

fn image_hint() -> String {
    format!(
        "build a local PostgreSQL + pgvector image with `cargo xtask pg-image` and set \
         {IMAGE_ENV}={LOCAL_IMAGE}, or `docker pull` the image where a registry is reachable"
    )
}

/// `docker rm --force --volumes`: the options every removal of a container here uses.
pub fn force_remove() -> RemoveContainerOptions {
    RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build()
}

/// Removes a container at exit (the `ContainerAsync` lives in a static and is never dropped).
fn remove(id: String) {
    let done = runtime::block_on(
        async move {
            let docker = Docker::connect_with_defaults()?;
            docker.remove_container(&id, Some(force_remove())).await
        },
        REMOVE_LIMIT,
    );
    if let Some(Err(e)) = done {
        eprintln!("pg-server: could not remove a container at exit: {e}");
    }
}

/// `host:pid` of this process, the value of [`OWNER_LABEL`].
fn owner() -> Option<String> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    Some(format!("{}:{}", host.trim(), std::process::id()))
}

/// Removes containers started here by processes of this host that no longer exist.
async fn sweep_stale(docker: &Docker) {
    let Some(me) = owner() else {
        return; // no /proc: cannot tell dead owners from live ones
    };
    let host = me
        .rsplit_once(':')
        .map(|(h, _)| h.to_owned())
        .unwrap_or_default();
    let filters = HashMap::from([("label".to_owned(), vec![OWNER_LABEL.to_owned()])]);
    let options = ListContainersOptions {
        all: true,
        filters: Some(filters),
        ..Default::default()
    };
    let Ok(Ok(list)) =
        tokio::time::timeout(PING_LIMIT, docker.list_containers(Some(options))).await
    else {
        return;
    };
    for c in list {
        let (Some(id), Some(labels)) = (c.id, c.labels) else {
            continue;
        };
        let Some((h, pid)) = labels.get(OWNER_LABEL).and_then(|o| o.rsplit_once(':')) else {
            continue;
        };
        if h == host && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = docker.remove_container(&id, Some(force_remove())).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_image_references() {
        assert_eq!(
            split_image("pgvector/pgvector:pg16"),
            ("pgvector/pgvector", "pg16")
        );
        assert_eq!(split_image("postgres"), ("postgres", "latest"));
        assert_eq!(
            split_image("registry.local:5000/team/pg:15"),
            ("registry.local:5000/team/pg", "15")
        );
        assert_eq!(
            split_image("registry.local:5000/team/pg"),
            ("registry.local:5000/team/pg", "latest")
        );
    }
}
