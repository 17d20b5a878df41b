"""Background job functions (thin: ids in, call storage and services) and the SAQ worker.

``jobs.registry`` lists them for both runners; ``saq jobs.worker.settings`` runs a worker.
"""
