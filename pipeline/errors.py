"""Domain errors with stable codes.

Every error the user can cause carries a ``code`` (stable, machine-readable) and an HTTP
``status`` so the CLI, the batch runner and the API report it the same way.
"""

from __future__ import annotations


class RobocallError(Exception):
    """Base class: an input or environment problem the user can act on."""

    code = "robocall_error"
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class NotAudioError(RobocallError):
    """The bytes are not a recording any decoder recognises (text, image, ...)."""

    code = "not_audio"
    status = 415


class EmptyAudioError(RobocallError):
    """Zero bytes, zero samples, digital silence only, or no speech at all."""

    code = "empty_audio"
    status = 422


class AudioTooShortError(EmptyAudioError):
    """Too little sound or speech to judge (a single word); the message states the minimum.

    A subclass of :class:`EmptyAudioError` so that code skipping unanalysable input skips it
    too; its own code tells the user to record more, not that the file is empty (issue 17).
    """

    code = "audio_too_short"
    status = 422


class AudioTooLongError(RobocallError):
    """Longer than the configured limit (actual and allowed are in the message)."""

    code = "audio_too_long"
    status = 413


class AudioTooLargeError(RobocallError):
    """More bytes than the configured upload limit."""

    code = "audio_too_large"
    status = 413


class UnsupportedAudioError(RobocallError):
    """Decodable, but outside what we analyse: too many channels, absurd sample rate."""

    code = "unsupported_audio"
    status = 422


class CorruptAudioError(RobocallError):
    """Recognised as audio but the decoder failed (truncated, damaged)."""

    code = "corrupt_audio"
    status = 422


class ModelNotAvailableError(RobocallError):
    """Weights are missing; the message names the package to install."""

    code = "model_unavailable"
    status = 503
