"""prunelab: data-free, training-free compression of speech foundation models by channel-wise k-means."""
