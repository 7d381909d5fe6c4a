"""The pipeline layer: what runs per camera and per frame (the camera loop, its accounting,
motion gate, tracking and its parts, batching). Ray-free."""
