"""The optional C extensions; everything else about the package is in pyproject.toml.

Kept here rather than in pyproject's `[tool.setuptools.ext-modules]`, which setuptools still
calls experimental. All are optional: without a C compiler the package installs without them
and the same messages take the pure-library paths (gateway/json_rows.py,
ingest/line_protocol.py, mqtt/fast.py), which accept, reject and write the same, and the rules
their numpy paths (alerts/rule_windows.py, alerts/rule_episodes.py), which compute the same.
"""

from setuptools import Extension, setup

FLAGS = ["-O2", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"]

setup(
    ext_modules=[
        # the usual telemetry message parsed straight into the decoder's float64 table
        Extension(
            "gateway._json_rows", ["gateway/_json_rows.c"], optional=True, extra_compile_args=FLAGS
        ),
        # runs of whole PUBLISH packets cut from the MQTT read buffer
        Extension(
            "mqtt._publishes", ["mqtt/_publishes.c"], optional=True, extra_compile_args=FLAGS
        ),
        # the rules' window functions walked device by device
        Extension(
            "alerts._windows",
            ["alerts/_windows.c"],
            depends=["alerts/_rows.h"],
            optional=True,
            extra_compile_args=FLAGS,
        ),
        # a plain rule's for timer, opens and clears walked device by device
        Extension(
            "alerts._episodes",
            ["alerts/_episodes.c"],
            depends=["alerts/_rows.h"],
            optional=True,
            extra_compile_args=FLAGS,
        ),
        # a kind's line protocol, written without a Python call per line
        Extension(
            "ingest._line_protocol",
            ["ingest/_line_protocol.c"],
            optional=True,
            extra_compile_args=FLAGS,
        ),
    ]
)
