"""convnets: chapter 8 of Deep Learning with Python (2nd ed.) as Kedro pipelines."""

__version__ = "0.1.0"
