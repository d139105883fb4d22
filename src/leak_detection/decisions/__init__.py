"""From a model's outputs to a file's class: segment scores, the vote, the decision rule, batched inference."""
