"""GIM-style self-training on unlabeled video: label nearby frames, propagate to distant
frames, store versioned labels, train on them mixed with the synthetic mixture."""
