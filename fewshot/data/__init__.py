"""Datasets: the shipped customer-feedback demo set, dataset files, few-shot sampling."""

from ._datasets import load_customer_feedback, read_dataset, read_split, sample_per_class

__all__ = ["load_customer_feedback", "read_dataset", "read_split", "sample_per_class"]
