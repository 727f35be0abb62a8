"""The labeling web app (FastAPI): the app, its routes, dependencies, request
checks and bodies, and the static rater and status pages.

The top layer with the commands: nothing below imports it.
"""
