"""Identity resolution: union-find over identifiers, linking rules, canonical customer ids, merge records."""
