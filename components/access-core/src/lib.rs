//! Access control's domain logic, free of I/O so it is tested natively and
//! runs unchanged inside the `access` component.
//!
//! - [`names`]: role, group, permission, service, collection and resource
//!   names; path segments.
//! - [`roles`]: permission sets and who may manage a group's members.
//! - [`policy`]: the policy document (stored per org, versioned) and its rules.
//! - [`facts`]: what the server resolves about a subject and a resource
//!   before any engine decides.
//! - [`engine`]: the [`engine::PolicyEngine`] trait and the built-in engine.
//! - [`filter`]: the filter tree an engine answers for a collection.
//! - [`render`]: that tree as a Mongo query document and as a parameterised
//!   SQL `WHERE` fragment over caller-named columns.
//!
//! ```
//! use access_core::filter::{Field, FieldMap, Filter};
//! use access_core::render::{Placeholder, to_sql};
//! let filter = Filter::any([
//!     Filter::In { field: Field::Id, values: vec!["d1".into(), "d2".into()] },
//!     Filter::Eq { field: Field::OwnerUser, value: "usr_1".into() },
//! ]);
//! let fields = FieldMap::new("id", Some("created_by"), None, None).unwrap();
//! let sql = to_sql(&filter, &fields, Placeholder::Question).unwrap();
//! assert_eq!(sql.sql, r#"("id" IN (?, ?) OR "created_by" = ?)"#);
//! assert_eq!(sql.params, ["d1", "d2", "usr_1"]);
//! ```

#![deny(missing_docs)]

pub mod engine;
pub mod facts;
pub mod filter;
pub mod names;
pub mod policy;
pub mod render;
pub mod roles;
