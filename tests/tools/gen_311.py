#!/usr/bin/env python3
"""gen_311.py — a sample 311 export (CSV) shaped like a US city's open-data file.

    python3 tests/tools/gen_311.py --rows 2000 --out sr-export-20181201.csv [--seed 311]

One row per service request with its latest status (a "snapshot" export), the columns
a real city's 311 portal writes:

    SRNumber,SRType,MethodReceived,SRStatus,Agency,CreatedDate,StatusDate,DueDate,
    Address,ZipCode,Latitude,Longitude,Resolution,DuplicateOf

Dates are US 12-hour local times of the city (America/Chicago), `04/12/2018 11:11:26 AM`;
addresses hold commas and quotes (the CSV quotes them, a quote doubled); some rows have no
latitude/longitude, no due date or no method. Every row is drawn here from small tables
(Chicago-like street names and ZIP codes, random house numbers, random coordinates in a
box around the city, random dates in 2018): no line comes from a real file and no
location is a real request's. Deterministic: the same arguments write the same bytes.

Rows 1 to 12 are fixed, so a test can check them by number (see FIXED below): clock
changes of 2018 (11 March, 4 November), 12:xx AM and PM, a comma and quotes in an
address. The last 7 rows are dirty on purpose (see DIRTY, in that order): dates that do not
parse or do not exist, statuses the mapping does not know. adapters/exemple-311/mapping.yaml
maps the file; tests/it/exemple_311.sh checks the hub stored it right.
"""
import argparse
import csv
import random
import sys
from datetime import datetime, timedelta

COLUMNS = ["SRNumber", "SRType", "MethodReceived", "SRStatus", "Agency", "CreatedDate",
           "StatusDate", "DueDate", "Address", "ZipCode", "Latitude", "Longitude",
           "Resolution", "DuplicateOf"]
FMT = "%m/%d/%Y %I:%M:%S %p"

# SRType -> (agency, days to the due date); "Tree Debris" has no category in the mapping
TYPES = {
    "Pothole in Street": ("CDOT", 7),
    "Street Light Out": ("CDOT", 10),
    "Graffiti Removal": ("Streets and Sanitation", 5),
    "Bulk Pickup": ("Streets and Sanitation", 14),
    "Rodent Baiting": ("Streets and Sanitation", 10),
    "Abandoned Vehicle": ("Police", 30),
    "Water Leak": ("Water Management", 3),
    "Building Violation": ("Buildings", 60),
    "Noise Complaint": ("Police", None),
    "Tree Debris": ("Forestry", 21),
}
METHODS = ["Phone"] * 30 + ["Web"] * 22 + ["Email"] * 8 + ["Walk-in"] * 4 + ["Mail"] * 2 + \
          ["API"] * 12 + ["Internal"] * 10 + ["System"] * 6 + [""] * 2
STATUSES = ["Open"] * 15 + ["In Progress"] * 20 + ["Pending"] * 8 + ["Closed"] * 52 + ["Cancelled"] * 5
CLOSED = ["Fixed"] * 50 + ["Completed"] * 10 + ["Duplicate"] * 12 + ["Referred to another agency"] * 8 + \
         ["No action needed"] * 10 + ["Unable to locate"] * 5 + ["Invalid request"] * 5
CANCELLED = ["Withdrawn by requester"] * 3 + ["Duplicate"] * 2
STREETS = ["N Milwaukee Ave", "W Madison St", "S Halsted St", "E 63rd St", "N Clark St",
           "W Fullerton Ave", "S Western Ave", "N Lincoln Ave", "W Irving Park Rd",
           "S Cottage Grove Ave", "W Belmont Ave", "N Sheridan Rd"]
ZIPS = ["60601", "60608", "60614", "60618", "60622", "60625", "60637", "60647"]

# rows by number: (SRType, MethodReceived, SRStatus, CreatedDate, StatusDate, Address, lat, lon,
#                  Resolution, DuplicateOf); DueDate from the type
FIXED = {
    # the docs' example; a comma and quotes in the address
    1: ("Pothole in Street", "Phone", "Closed", "04/12/2018 11:11:26 AM", "04/13/2018 02:40:00 PM",
        '1200 W "Old" Madison St, Apt 3', "41.8817", "-87.6575", "Fixed", ""),
    # created before the spring change (CST, -06:00), closed after it (CDT, -05:00)
    2: ("Street Light Out", "Web", "Closed", "03/10/2018 11:30:00 PM", "03/11/2018 03:15:00 AM",
        "4400 N Clark St", "41.9612", "-87.6658", "Fixed", ""),
    # 12:05 AM is 00:05; 12:45:10 PM is 12:45:10
    3: ("Graffiti Removal", "Internal", "In Progress", "04/12/2018 12:05:00 AM", "04/12/2018 12:45:10 PM",
        "63rd & Cottage Grove, NE corner", "", "", "", ""),
    # 02:30 AM on 11 March 2018 never happened in Chicago: read with the offset before (-06:00)
    4: ("Water Leak", "Phone", "Pending", "03/11/2018 02:30:00 AM", "03/11/2018 09:00:00 AM",
        '2100 S Western Ave, "rear"', "41.8537", "-87.6857", "", ""),
    # 01:30 AM on 4 November 2018 happened twice: the first one (CDT, -05:00)
    5: ("Bulk Pickup", "Email", "Closed", "11/03/2018 10:00:00 PM", "11/04/2018 01:30:00 AM",
        "3300 W Fullerton Ave", "41.9245", "-87.7102", "Completed", ""),
    # a duplicate of row 1, cancelled
    6: ("Pothole in Street", "API", "Cancelled", "04/12/2018 11:20:00 AM", "04/12/2018 12:00:00 PM",
        '1200 W "Old" Madison St, Apt 3', "41.8817", "-87.6575", "Duplicate", "SR18-00000001"),
    # 12:00:00 AM on New Year's Eve, after the autumn change (CST)
    7: ("Noise Complaint", "Walk-in", "Closed", "12/31/2018 11:59:59 PM", "01/01/2019 12:00:00 AM",
        '2800 N Sheridan Rd, Unit "9B"', "", "", "No action needed", ""),
    # a type the mapping has no category for (autre); noon
    8: ("Tree Debris", "System", "Open", "07/04/2018 12:00:00 PM", "07/04/2018 12:00:00 PM",
        "5100 S Halsted St", "41.8013", "-87.6457", "", ""),
    # a letter, referred to another agency (transferred)
    9: ("Building Violation", "Mail", "Closed", "01/15/2018 09:05:00 AM", "02/20/2018 04:00:00 PM",
        "1600 N Milwaukee Ave", "41.9105", "-87.6776", "Referred to another agency", ""),
    # no method (inconnu), no address, no coordinates: no location
    10: ("Abandoned Vehicle", "", "Open", "08/01/2018 07:45:00 AM", "08/01/2018 07:45:00 AM",
         "", "", "", "", ""),
    # 12:59:59 AM; refused
    11: ("Rodent Baiting", "Internal", "Closed", "05/05/2018 01:00:00 PM", "05/06/2018 12:59:59 AM",
         "700 W Belmont Ave", "41.9399", "-87.6472", "Invalid request", ""),
    # withdrawn by the resident; UTF-8 in the address
    12: ("Pothole in Street", "Web", "Cancelled", "06/01/2018 08:00:00 AM", "06/02/2018 08:00:00 AM",
         "3900 N Lincoln Ave, Piñata Café", "41.9530", "-87.6812", "Withdrawn by requester", ""),
}

# the dirty rows, written last: the column changed and what the hub must say
DIRTY = [
    ("StatusDate", "04/31/2018 10:00:00 AM"),     # 31 April does not exist: bad_date
    ("CreatedDate", "2018-04-12 11:11:26"),        # ISO text in a US column: bad_date
    ("StatusDate", "04/12/2018 13:05:00 PM"),      # 13 on a 12-hour clock: bad_date
    ("StatusDate", "04/12/2018 11:11:26"),         # no AM/PM: bad_date
    ("DueDate", "00/12/2018 11:11:26 AM"),         # month 0: bad_date
    ("SRStatus", "Reopened"),                      # not in the mapping: unmapped_value
    ("SRStatus", "Escalated"),                     # unmapped_value
]


def address(rng):
    n = rng.randrange(100, 9000, 2)
    street = rng.choice(STREETS)
    r = rng.random()
    if r < 0.10:
        return "%d %s, Apt %d" % (n, street, rng.randrange(1, 40))
    if r < 0.14:
        return '%d %s, "rear alley"' % (n, street)
    if r < 0.17:
        return '%d "%s" Bldg, %s' % (n, rng.choice(["Old Post", "Marina", "Tower"]), street)
    if r < 0.20:
        return "%s & %s" % (street, rng.choice(STREETS))
    if r < 0.22:
        return ""
    return "%d %s" % (n, street)


def row(i, rng, created, sr_type, method, status, status_date, addr, lat, lon, resolution, dup):
    agency, due_days = TYPES[sr_type]
    due = "" if due_days is None else (created + timedelta(days=due_days)).strftime(FMT)
    zipc = rng.choice(ZIPS) if addr else ""
    return {"SRNumber": "SR18-%08d" % i, "SRType": sr_type, "MethodReceived": method,
            "SRStatus": status, "Agency": agency, "CreatedDate": created.strftime(FMT),
            "StatusDate": status_date, "DueDate": due, "Address": addr, "ZipCode": zipc,
            "Latitude": lat, "Longitude": lon, "Resolution": resolution, "DuplicateOf": dup}


def generate(rows, seed):
    rng = random.Random(seed)
    out = []
    ndirty = len(DIRTY)
    start = datetime(2018, 1, 1)
    for i in range(1, rows + 1):
        if i in FIXED:
            t, m, st, cr, sd, addr, lat, lon, res, dup = FIXED[i]
            r = row(i, rng, datetime.strptime(cr, FMT), t, m, st, sd, addr, lat, lon, res, dup)
            out.append(r)
            continue
        sr_type = rng.choice(sorted(TYPES))
        # any second of 2018, so rows fall on both sides of the clock changes
        created = start + timedelta(seconds=rng.randrange(365 * 86400))
        status = rng.choice(STATUSES)
        if status == "Open":
            when = created
        else:
            when = created + timedelta(seconds=rng.randrange(60, 20 * 86400))
        resolution, dup = "", ""
        if status == "Closed":
            resolution = rng.choice(CLOSED)
        elif status == "Cancelled":
            resolution = rng.choice(CANCELLED)
        if resolution == "Duplicate" and i > 20:
            dup = "SR18-%08d" % rng.randrange(13, i)
        addr = address(rng)
        if addr and rng.random() < 0.85:
            lat = "%.7f" % rng.uniform(41.65, 42.02)
            lon = "%.7f" % rng.uniform(-87.94, -87.52)
        else:
            lat, lon = "", ""
        r = row(i, rng, created, sr_type, rng.choice(METHODS), status, when.strftime(FMT),
                addr, lat, lon, resolution, dup)
        k = i - (rows - ndirty) - 1
        if 0 <= k < ndirty:
            col, value = DIRTY[k]
            r[col] = value
        out.append(r)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=311)
    ap.add_argument("--out", default="-", help="file to write (- for stdout)")
    a = ap.parse_args()
    if a.rows < len(FIXED) + len(DIRTY):
        ap.error("--rows must be at least %d" % (len(FIXED) + len(DIRTY)))
    f = sys.stdout if a.out == "-" else open(a.out, "w", encoding="utf-8", newline="")
    w = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\r\n")
    w.writeheader()
    w.writerows(generate(a.rows, a.seed))
    if f is not sys.stdout:
        f.close()


if __name__ == "__main__":
    main()
