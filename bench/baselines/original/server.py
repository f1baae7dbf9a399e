"""Baseline (d): the original, in Python 3 as Debian packages it today.

The same server as the original example (Flask, Flask-SQLAlchemy's QueuePool of 5 + 10, psycopg2
made cooperative by psycogreen, run by gunicorn with the gevent worker), reading the same `todo`
table, with the route the benchmark loads, /todos/, answering the way its sleep routes did after
their sleep. Run by bench/suites.ts as:

    PSYCOGREEN=true DATABASE_URL=... gunicorn -k gevent -w 1 -b 127.0.0.1:PORT server:app
"""
import os

if "PSYCOGREEN" in os.environ:
    # Before anything imports socket or psycopg2: make both cooperative under gevent.
    from gevent.monkey import patch_all

    patch_all()
    from psycogreen.gevent import patch_psycopg

    patch_psycopg()

from flask import Flask, jsonify
from flask_sqlalchemy import SQLAlchemy

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg2://", 1)
app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_size": 5, "max_overflow": 10, "pool_timeout": 30}
db = SQLAlchemy(app)


class Todo(db.Model):
    __tablename__ = "todo"
    id = db.Column(db.Integer, primary_key=True)
    title = db.Column(db.String(60))
    done = db.Column(db.Boolean)
    priority = db.Column(db.Integer)

    def as_dict(self):
        return {"id": self.id, "title": self.title, "done": self.done, "priority": self.priority}


@app.route("/todos/")
def todos():
    return jsonify(todos=[todo.as_dict() for todo in Todo.query.order_by(Todo.id).all()])
