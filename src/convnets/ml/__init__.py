"""The machine-learning wing: everything Keras and TensorFlow, and nothing of Kedro.

- ``models`` (one builder per listing of the book), ``layers``;
- ``preprocessing`` (pictures to model input, one path everywhere), ``image_checks``;
- ``hardware`` (what the machine computes fast), ``training/`` (compile, fit, resume);
- ``explain/`` (section 9.4), ``reporting`` (figures, tables, the MLflow metric format).
"""
