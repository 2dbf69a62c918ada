"""Pure work: plain values in, results out. No Flask, Huey or Peewee here."""
