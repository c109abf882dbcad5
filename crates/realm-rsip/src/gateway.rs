//! (in progress: the gateway engine)
