//! Who a function belongs to: a namespace, or everyone (a global service, deployed by an admin
//! and called from any namespace). The owner decides where the function is stored, which image
//! tables its image reference is looked up in and pulled into, which registry credentials pull
//! it, and how messages name it.

use faasbox_images::Scope;
use faasbox_store::{Store, StoreError, GLOBAL_OWNER};

use crate::error::ApiError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Namespace(String),
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

    /// The `registry add` arguments that store credentials this owner's pulls use.
    pub fn registry_hint(&self) -> String {
        match self {
            Owner::Namespace(ns) => {
                format!("faasbox registry add {ns} HOST -u USER --password-stdin (or --global)")
            }
            Owner::Global => {
                "faasbox registry add --global-private HOST -u USER --password-stdin (or --global)"
                    .into()
            }
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

    pub fn load_function(
        &self,
        store: &Store,
        name: &str,
    ) -> Result<Option<faasbox_store::FunctionRecord>, StoreError> {
        match self {
            Owner::Namespace(ns) => store.function(ns, name),
            Owner::Global => store.global_function(name),
        }
    }

    pub fn list_functions(
        &self,
        store: &Store,
    ) -> Result<Vec<faasbox_store::FunctionRecord>, StoreError> {
        match self {
            Owner::Namespace(ns) => store.list_functions(ns),
            Owner::Global => store.list_global_functions(),
        }
    }

    pub fn delete_function(&self, store: &Store, name: &str) -> Result<bool, StoreError> {
        match self {
            Owner::Namespace(ns) => store.delete_function(ns, name),
            Owner::Global => store.delete_global_function(name),
        }
    }

    /// 404 for a function that does not exist.
    pub fn missing(&self, name: &str) -> ApiError {
        ApiError::not_found(format!(
            "{} does not exist; deploy it with `{}`",
            self.describe(name),
            self.deploy_hint(name)
        ))
    }
}
