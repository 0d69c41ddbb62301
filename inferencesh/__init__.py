"""inferencesh: run inference.sh apps and agents and follow them live as server-sent events.

Reconnects and retries are logged on the ``inferencesh`` logger
(``inferencesh.stream``, ``inferencesh.retry``); like any library, it prints
nothing until the application configures logging.
"""

import logging as _logging

from ._errors import (
    AgentError,
    APIError,
    AuthenticationError,
    Cancelled,
    ConflictError,
    ConnectionLost,
    DownloadError,
    FileTransferError,
    InferenceError,
    NotFoundError,
    ProtocolError,
    RateLimitError,
    RequirementsNotMet,
    StreamTimeout,
    TaskCancelled,
    TaskFailed,
    TaskRejected,
    UploadError,
    UsageError,
)
from ._stream import TaskStream
from ._version import __version__
from ._watchdog import CancelToken
from .agent import Agent, AgentStream
from .client import Client, Settings, Tasks, inference
from .files import File, Files, UploadedFile, download, save_outputs
from .models import Done, Message, Progress, Reply, Task, TaskStatus, TaskUpdate, ToolCall

_logging.getLogger("inferencesh").addHandler(_logging.NullHandler())

__all__ = [
    "APIError",
    "Agent",
    "AgentError",
    "AgentStream",
    "AuthenticationError",
    "CancelToken",
    "Cancelled",
    "Client",
    "ConflictError",
    "ConnectionLost",
    "Done",
    "DownloadError",
    "File",
    "FileTransferError",
    "Files",
    "InferenceError",
    "Message",
    "NotFoundError",
    "Progress",
    "ProtocolError",
    "RateLimitError",
    "Reply",
    "RequirementsNotMet",
    "Settings",
    "StreamTimeout",
    "Task",
    "TaskCancelled",
    "TaskFailed",
    "TaskRejected",
    "TaskStatus",
    "TaskStream",
    "TaskUpdate",
    "Tasks",
    "ToolCall",
    "UploadError",
    "UploadedFile",
    "UsageError",
    "__version__",
    "download",
    "inference",
    "save_outputs",
]
