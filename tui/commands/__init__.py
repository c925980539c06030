"""One module per `scribe` subcommand: parse its flags, run it through the engine, print."""
