"""The floor: a bare Flask app that only parses the JSON body and answers no cards.

Served by bench/run with gunicorn, the same worker class, workers and threads as the service,
so the difference to the service is the service's own work. Under gevent it gets the service's
pre_request hook too (each request first lets the other waiting connections go: see
bench/bench.py FLOOR_GEVENT_CONFIG), else its p99 at 8 keep-alive connections measures gevent's
unfairness, not parsing. bench/bench.py also sends it the scaling table's bodies (up to ~10 MB).
"""

from flask import Flask, jsonify, request

app = Flask("legcramp_cds_floor")


@app.post("/cds-services/<service_id>")
def hook(service_id: str):
    request.get_json(force=True)
    return jsonify({"cards": []})
