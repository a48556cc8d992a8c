"""Composing an ensemble: which zoo models become its members (``members``) and the workflow that
builds, trains, evaluates and saves it (``workflow``)."""

from .members import ComposeError, choose_members, rank_key
from .workflow import ComposeRequest, ComposeResult, check, compose, record_test

__all__ = ["ComposeError", "ComposeRequest", "ComposeResult", "check", "choose_members", "compose", "rank_key", "record_test"]
