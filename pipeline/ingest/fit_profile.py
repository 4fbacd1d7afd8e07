"""The FIT profile numbers this project reads and writes, named once.

FIT messages carry numbers, not names: a ``record`` is global message 20 and its heart rate is field 3,
while a ``session``'s average heart rate is field 16 and a ``lap``'s is field 15. The names below are the
FIT SDK profile's (``Profile.xlsx``, also fitparse's ``profile.py``), prefixed with their message because
field numbers only mean something within one message type. Used by the decoder and reader
(:mod:`pipeline.ingest.fit_decode`, :mod:`pipeline.ingest.fit_reader`) and the demo's FIT writer.
"""

from __future__ import annotations

# Global message numbers.
MESG_FILE_ID = 0
MESG_SPORT = 12
MESG_SESSION = 18
MESG_LAP = 19
MESG_RECORD = 20
MESG_EVENT = 21
MESG_DEVICE_INFO = 23
MESG_ACTIVITY = 34
MESG_SET = 225

# Fields every message type may carry.
FIELD_TIMESTAMP = 253      # s since the FIT epoch (1989-12-31T00:00:00Z)
FIELD_MESSAGE_INDEX = 254

# file_id
FILE_ID_TYPE = 0           # enum `file`
FILE_ID_MANUFACTURER = 1   # enum `manufacturer`
FILE_ID_PRODUCT = 2        # garmin_product when the manufacturer is Garmin-like
FILE_ID_SERIAL_NUMBER = 3
FILE_ID_TIME_CREATED = 4
FILE_ID_PRODUCT_NAME = 8

# sport
SPORT_SPORT = 0
SPORT_SUB_SPORT = 1

# session (times in ms, distance in cm, speeds in mm/s)
SESSION_EVENT = 0
SESSION_EVENT_TYPE = 1
SESSION_START_TIME = 2
SESSION_START_POSITION_LAT = 3
SESSION_START_POSITION_LONG = 4
SESSION_SPORT = 5
SESSION_SUB_SPORT = 6
SESSION_TOTAL_ELAPSED_TIME = 7
SESSION_TOTAL_TIMER_TIME = 8
SESSION_TOTAL_DISTANCE = 9
SESSION_AVG_HEART_RATE = 16
SESSION_MAX_HEART_RATE = 17
SESSION_AVG_CADENCE = 18
SESSION_TOTAL_ASCENT = 22
SESSION_TOTAL_DESCENT = 23
SESSION_FIRST_LAP_INDEX = 25
SESSION_NUM_LAPS = 26
SESSION_ENHANCED_AVG_SPEED = 124
SESSION_ENHANCED_MAX_SPEED = 125

# lap (same units as session)
LAP_EVENT = 0
LAP_EVENT_TYPE = 1
LAP_START_TIME = 2
LAP_TOTAL_ELAPSED_TIME = 7
LAP_TOTAL_TIMER_TIME = 8
LAP_TOTAL_DISTANCE = 9
LAP_AVG_SPEED = 13
LAP_AVG_HEART_RATE = 15
LAP_MAX_HEART_RATE = 16
LAP_SPORT = 25
LAP_ENHANCED_AVG_SPEED = 110

# record
RECORD_POSITION_LAT = 0           # semicircles
RECORD_POSITION_LONG = 1          # semicircles
RECORD_ALTITUDE = 2               # m * 5 + 500 * 5
RECORD_HEART_RATE = 3             # bpm
RECORD_CADENCE = 4                # rpm; strides/min when running
RECORD_DISTANCE = 5               # cm
RECORD_SPEED = 6                  # mm/s
RECORD_POWER = 7                  # W
RECORD_COMPRESSED_SPEED_DISTANCE = 8  # 3 bytes: 12 bits speed + 12 bits rolling distance
RECORD_TEMPERATURE = 13           # deg C
RECORD_FRACTIONAL_CADENCE = 53    # 1/128 rpm
RECORD_ENHANCED_SPEED = 73        # mm/s
RECORD_ENHANCED_ALTITUDE = 78     # m * 5 + 500 * 5

# event
EVENT_EVENT = 0
EVENT_EVENT_TYPE = 1

# device_info
DEVICE_INFO_DEVICE_INDEX = 0
DEVICE_INFO_MANUFACTURER = 2
DEVICE_INFO_SERIAL_NUMBER = 3
DEVICE_INFO_PRODUCT = 4
DEVICE_INFO_SOFTWARE_VERSION = 5
DEVICE_INFO_PRODUCT_NAME = 27

# activity
ACTIVITY_TOTAL_TIMER_TIME = 0
ACTIVITY_NUM_SESSIONS = 1
ACTIVITY_TYPE = 2
ACTIVITY_EVENT = 3
ACTIVITY_EVENT_TYPE = 4

# Enum values.
FILE_TYPE_ACTIVITY = 4            # enum `file`
SPORT_RUNNING = 1                 # enum `sport`
SPORT_TRAINING = 10               # enum `sport`
SUB_SPORT_STRENGTH_TRAINING = 20  # enum `sub_sport`
