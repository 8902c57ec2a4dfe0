"""anprtrain: the recipe that makes anprd's plate recogniser.

It renders synthetic plates (anprtrain.layouts, anprtrain.render), cuts
them into the crops the reader gives the recogniser at run time (the Go
tool train/cropper runs the reader's own detector and cropping on the
rendered scenes), trains a small CTC recogniser on CPU (anprtrain.model,
anprtrain.train) and exports it to ONNX (anprtrain.export). It runs only in
development (`make model`); anprd never imports it. See train/README.md.
"""
