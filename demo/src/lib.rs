//! The demo application.
