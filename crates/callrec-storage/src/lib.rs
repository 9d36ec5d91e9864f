//! Recording storage, spool and delivery (to be written).
