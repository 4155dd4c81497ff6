"""AnswererBase with a trained network: checkpoints, searches (greedy, beam, sampling), batched
inference, the ``Answerer`` Python API and answer metrics. Built on the data and network layers."""
