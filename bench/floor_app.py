"""The floor: a bare Flask app that only parses the JSON body and answers no cards.

Served by bench/run with gunicorn, the same worker class, workers and threads as the service,
so the difference to the service is the service's own work.
"""

from flask import Flask, jsonify, request

app = Flask("legcramp_cds_floor")


@app.post("/cds-services/<service_id>")
def hook(service_id: str):
    request.get_json(force=True)
    return jsonify({"cards": []})
