//! (in progress: the host engine)
