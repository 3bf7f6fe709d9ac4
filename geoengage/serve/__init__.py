"""Uploads -> scored faces and windows over HTTP: the ``geoengage serve`` FastAPI app.

Endpoints (the OpenAPI spec is at ``/openapi.json``, interactive docs at ``/docs``):

=================  =============================================================================
``POST /predict``  one image or short video as the multipart field ``file``. The type is
                   sniffed from the content (:func:`geoengage.media.sniff_media`), never from
                   the name. Returns per face its features, expression probabilities, engagement
                   probability and top reasons, and for a video every window's scores
                   (``?timeline=true`` adds the per-frame series the web page plots).
``GET /health``    liveness, version and the loaded models.
``GET /``          the web page: upload a clip, see the timeline (``geoengage/web/index.html``).
=================  =============================================================================

Bad input is a 4xx with ``{"detail": "..."}``: 400 empty or unreadable upload, 413 over the size
or duration limit, 415 not an image or video geoengage reads, 422 a file of a known type that
does not decode (truncated, corrupt). The upload is written only inside a temporary directory
that is removed when the request ends.

Analyses run in a pool of ``ServeConfig.workers`` worker processes (``geoengage serve --workers N``, default
the cores), each with its own models and one compute thread, analysing one upload at a time; the web process
only reads uploads, queues them (503 with ``Retry-After`` when the queue is full) and answers ``/health`` at
once. With ``workers=0`` analyses run in the web process's threads (``max_concurrent`` at a time).

The package, by concern: :mod:`~geoengage.serve.config` (:class:`ServeConfig`, :class:`UploadError`),
:mod:`~geoengage.serve.analysis` (an upload on disk -> the answer), :mod:`~geoengage.serve.pool` (the worker
processes) and :mod:`~geoengage.serve.app` (the FastAPI application, upload checks, queue, middleware).
"""

from .analysis import REPORTED_FEATURES, analyse, summarize_prediction
from .app import CONFIG_ENV, NoDelayHTTPProtocol, create_app, create_app_from_env
from .config import ServeConfig, UploadError
from .pool import AnalysisPool

__all__ = ["CONFIG_ENV", "REPORTED_FEATURES", "AnalysisPool", "NoDelayHTTPProtocol", "ServeConfig", "UploadError",
           "analyse", "create_app", "create_app_from_env", "summarize_prediction"]
