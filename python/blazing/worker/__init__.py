"""The worker runtime: what runs deliveries of user functions.

In embedded mode it runs inside the app's process (an event loop for async
work, threads for blocking work).
"""
