"""The HTTP edge: the Litestar app, its routes and the response envelope.

It drives the services (motionledger.services) and answers their errors
(motionledger.errors); it may import the services, the domain, settings, logs and metrics —
never the CLI or the process wiring (motionledger.daemon), and nothing below it imports it.
Routes get their services by dependency injection (see deps.py), typed by the protocols
there, so a test can hand the app fakes.
"""
