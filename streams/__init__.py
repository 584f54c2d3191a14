"""streamrec's I/O side: the Faust app, Kafka wrappers, web views and the CLI."""
