"""The network: recurrent cells, bridge, attention, copy, features, scopes, sharing,
initializers, and the builder that assembles a ``Seq2Seq`` from its config. Plain
``torch.nn``; knows nothing of data files, training or decoding."""
