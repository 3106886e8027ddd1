"""Planning: how a call is cut into tiles and in which order they are communicated and computed."""
