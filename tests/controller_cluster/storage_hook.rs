//! A storage connector that places a legal hold on a Backup the moment the store has answered the
//! listing of that backup's directory: after the re-check before the step, before any delete.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use backup_guard::controller::kinds::Kind;
use backup_guard::policy::stamps::HOLD;
use kube::Client;
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpRequest, HttpResponse, HttpService, ReqwestConnector,
};
use object_store::ClientOptions;
use serde_json::json;

use crate::harness::patch;

/// Holds Backup `ns/name` once, when an S3 listing of `backups/<name>/` has been answered.
#[derive(Clone)]
pub struct HoldOnListing(Arc<Target>);

struct Target {
    client: Client,
    ns: String,
    name: String,
    fired: AtomicBool,
}

impl HoldOnListing {
    pub fn new(client: &Client, ns: &str, name: &str) -> HoldOnListing {
        HoldOnListing(Arc::new(Target {
            client: client.clone(),
            ns: ns.into(),
            name: name.into(),
            fired: AtomicBool::new(false),
        }))
    }

    /// Whether the hold was placed.
    pub fn fired(&self) -> bool {
        self.0.fired.load(Ordering::SeqCst)
    }
}

impl std::fmt::Debug for HoldOnListing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HoldOnListing({}/{})", self.0.ns, self.0.name)
    }
}

impl HttpConnector for HoldOnListing {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let inner = ReqwestConnector::default().connect(options)?;
        Ok(HttpClient::new(Hooked {
            inner,
            hook: self.clone(),
        }))
    }
}

#[derive(Debug)]
struct Hooked {
    inner: HttpClient,
    hook: HoldOnListing,
}

type Reply<'a> = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'a>>;

impl HttpService for Hooked {
    // The desugared form of `#[async_trait] async fn call`.
    fn call<'life0, 'async_trait>(&'life0 self, req: HttpRequest) -> Reply<'async_trait>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        let query = req.uri().query().unwrap_or_default().to_string();
        let name = &self.hook.0.name;
        let dirs = [format!("backups%2F{name}%2F"), format!("backups/{name}/")];
        let lists_backup = query.contains("list-type=2") && dirs.iter().any(|d| query.contains(d));
        Box::pin(async move {
            let answer = self.inner.execute(req).await?;
            let target = &self.hook.0;
            if lists_backup && !target.fired.swap(true, Ordering::SeqCst) {
                let hold = json!({"metadata": {"labels": {HOLD: "true"}}});
                patch(
                    &target.client,
                    Kind::Backup,
                    Some(&target.ns),
                    &target.name,
                    hold,
                )
                .await;
            }
            Ok(answer)
        })
    }
}
