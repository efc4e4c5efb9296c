//! Route tables: every route a router serves is one [`Route`] in a table, and the router is built
//! from the table, so [`crate::admin_routes`] and [`crate::tracking_routes`] list exactly what is
//! served (the OpenAPI consistency test compares them with the document).

use axum::Router;
use axum::handler::Handler;
use axum::routing::{MethodFilter, MethodRouter, on};

/// One method on one path, and the handler serving it.
pub(crate) struct Route<S> {
    method: &'static str,
    path: &'static str,
    handler: MethodRouter<S>,
}

impl<S: Clone + Send + Sync + 'static> Route<S> {
    pub(crate) fn get<H: Handler<T, S>, T: 'static>(path: &'static str, handler: H) -> Self {
        Self::on("GET", MethodFilter::GET, path, handler)
    }

    pub(crate) fn post<H: Handler<T, S>, T: 'static>(path: &'static str, handler: H) -> Self {
        Self::on("POST", MethodFilter::POST, path, handler)
    }

    pub(crate) fn put<H: Handler<T, S>, T: 'static>(path: &'static str, handler: H) -> Self {
        Self::on("PUT", MethodFilter::PUT, path, handler)
    }

    pub(crate) fn patch<H: Handler<T, S>, T: 'static>(path: &'static str, handler: H) -> Self {
        Self::on("PATCH", MethodFilter::PATCH, path, handler)
    }

    pub(crate) fn delete<H: Handler<T, S>, T: 'static>(path: &'static str, handler: H) -> Self {
        Self::on("DELETE", MethodFilter::DELETE, path, handler)
    }

    fn on<H: Handler<T, S>, T: 'static>(
        method: &'static str,
        filter: MethodFilter,
        path: &'static str,
        handler: H,
    ) -> Self {
        Self {
            method,
            path,
            handler: on(filter, handler),
        }
    }

    /// What this route serves, for [`ServedRoute`] lists.
    pub(crate) fn served(&self, public: bool) -> ServedRoute {
        ServedRoute {
            method: self.method,
            path: self.path,
            public,
        }
    }
}

/// The router serving `routes` (methods on the same path are merged, as axum does).
pub(crate) fn router<S: Clone + Send + Sync + 'static>(
    routes: impl IntoIterator<Item = Route<S>>,
) -> Router<S> {
    routes.into_iter().fold(Router::new(), |router, route| {
        router.route(route.path, route.handler)
    })
}

/// A route a router serves: method (`"GET"`, …), path in axum's syntax (`/api/v1/sources/{id}`,
/// which is OpenAPI's too), and whether it is served without credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServedRoute {
    /// The HTTP method, upper case.
    pub method: &'static str,
    /// The path, with `{name}` segments.
    pub path: &'static str,
    /// Served without credentials (no token, no write key).
    pub public: bool,
}
