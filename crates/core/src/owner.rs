//! Who a function belongs to: a namespace, or everyone (a global service, deployed by an admin
//! and called from any namespace). The owner decides where the function is stored, which image
//! tables its image reference is looked up in and pulled into, which registry credentials pull
//! it, and how messages name it.

use faasbox_images::Scope;
use faasbox_store::{Store, StoreError, GLOBAL_OWNER};

use crate::failure::Failure;

/// Who a function belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// A namespace's function.
    Namespace(String),
    /// A global service: deployed by an admin, called from any namespace.
    Global,
}

impl Owner {
    /// The owner's part of a pool key (`*global` cannot be a namespace's name).
    pub fn key(&self) -> &str {
        match self {
            Owner::Namespace(ns) => ns,
            Owner::Global => GLOBAL_OWNER,
        }
    }

    /// The owner a stored record names.
    pub fn from_key(key: &str) -> Owner {
        if key == GLOBAL_OWNER {
            Owner::Global
        } else {
            Owner::Namespace(key.to_string())
        }
    }

    /// "function demo/echo" or "global service echo".
    pub fn describe(&self, name: &str) -> String {
        match self {
            Owner::Namespace(ns) => format!("function {ns}/{name}"),
            Owner::Global => format!("global service {name}"),
        }
    }

    /// The command that deploys it, for messages.
    pub fn deploy_hint(&self, name: &str) -> String {
        match self {
            Owner::Namespace(ns) => format!("faasbox fn deploy {ns}/{name} --image …"),
            Owner::Global => format!("faasbox fn deploy --global {name} --image …"),
        }
    }

    /// Who stores the credentials this owner's pulls use, and how (for pull failures, which
    /// anyone who may see the function reads).
    pub fn credentials_fix(&self) -> String {
        match self {
            Owner::Namespace(ns) => format!(
                "an admin of namespace {ns} adds or corrects them with `faasbox registry add \
                 {ns} HOST -u USER --password-stdin` (`faasbox registry ls {ns}` lists them), or \
                 the server admin for every namespace with `--global` instead of {ns}"
            ),
            Owner::Global => "the server admin adds or corrects them with `faasbox registry \
                 add --global-private HOST -u USER --password-stdin` (or --global; `faasbox \
                 registry ls --global-private` lists them)"
                .to_string(),
        }
    }

    /// The command that imports `image` into this owner's images.
    pub fn import_hint(&self, image: &str) -> String {
        match self {
            Owner::Namespace(ns) => format!("faasbox image import FILE --name {image} -n {ns}"),
            Owner::Global => format!("faasbox image import FILE --name {image}"),
        }
    }

    /// The namespace whose image table is searched first (then the server-wide one); `None`
    /// for a global service, which uses server-wide images only.
    pub fn image_namespace(&self) -> Option<&str> {
        match self {
            Owner::Namespace(ns) => Some(ns),
            Owner::Global => None,
        }
    }

    /// The image table the owner's pulls go into.
    pub fn image_scope(&self) -> Scope {
        Scope::of(self.image_namespace())
    }

    /// The stored record of this owner's function `name`, if there is one.
    pub async fn load_function(
        &self,
        store: &dyn Store,
        name: &str,
    ) -> Result<Option<faasbox_store::FunctionRecord>, StoreError> {
        match self {
            Owner::Namespace(ns) => store.function(ns, name).await,
            Owner::Global => store.global_function(name).await,
        }
    }

    /// The stored records of this owner's functions.
    pub async fn list_functions(
        &self,
        store: &dyn Store,
    ) -> Result<Vec<faasbox_store::FunctionRecord>, StoreError> {
        match self {
            Owner::Namespace(ns) => store.list_functions(ns).await,
            Owner::Global => store.list_global_functions().await,
        }
    }

    pub(crate) async fn delete_function(
        &self,
        store: &dyn Store,
        name: &str,
    ) -> Result<bool, StoreError> {
        match self {
            Owner::Namespace(ns) => store.delete_function(ns, name).await,
            Owner::Global => store.delete_global_function(name).await,
        }
    }

    /// 404 for a function that does not exist.
    pub fn missing(&self, name: &str) -> Failure {
        Failure::not_found(format!(
            "{} does not exist; deploy it with `{}`",
            self.describe(name),
            self.deploy_hint(name)
        ))
    }
}
/// The key of function `name` of owner `namespace` (a namespace, or `*global`) in the pools
/// and the pull book: "namespace/name".
pub fn function_key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}
