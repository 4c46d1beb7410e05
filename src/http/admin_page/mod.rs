//! The admin page: a static page compiled into the binary (`assets`: HTML, CSS and a small
//! script that draws its charts on a `<canvas>`; nothing is fetched from elsewhere) and the
//! live feed it reads (`live`: a bounded SSE stream of node snapshots built by `snapshot`).
//! Everything under `/admin/` needs the super-user once users exist (`http::auth`).

pub mod assets;
pub mod live;
pub mod snapshot;
