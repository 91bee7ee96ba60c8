//! Creating, showing, changing and deleting routes: what the API takes (credentials in clear)
//! checked and turned into a [`super::RouteSpec`] (credentials hashed), stored, and the
//! gateway's table reloaded.
