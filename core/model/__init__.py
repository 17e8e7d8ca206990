"""The backbones and the vectors they give: the Keras-free registry of backbones (`backbones`), the
PyTorch weight reader and port (`pth_reader`, `backbone`), the feature extractors and heads' layers
(`features`), the input pipeline that decodes and letterboxes posters (`pipeline`), and the one embeddings
store every consumer of backbone vectors reads and fills (`embedding_store`, `embeddings`).

May import: the foundation, NumPy, Keras and TensorFlow. Nothing of the dataset's catalog, training or the
app: a vector depends only on the backbone and the poster file.
"""
