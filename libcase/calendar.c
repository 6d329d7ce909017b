/*
 * calendar.c — civil dates, Europe/Amsterdam local days, the Algemene
 * termijnenwet (Atw) holidays and legal terms on the four clocks.
 *
 * Dates are plain day numbers (days since 1970-01-01, proleptic Gregorian),
 * converted with Howard Hinnant's days_from_civil / civil_from_days
 * arithmetic.  No libc time-zone function is used: the Europe/Amsterdam
 * offset follows the EU rule (CET = UTC+1; CEST = UTC+2 from the last Sunday
 * of March 01:00 UTC to the last Sunday of October 01:00 UTC), applied to
 * every year.
 *
 * Holidays: the Atw art. 3 days are computed per year from the date (Easter
 * by the anonymous Gregorian algorithm), so any year works without a table;
 * days designated by Royal Decree (art. 3(3)) live in a sorted array on the
 * calendar handle, searched by bisection.  Loops over many days (working-day
 * counting) keep the year's statutory set in a small cache on their own
 * stack, so the handle stays const and shareable by readers.
 *
 * See docs/calendar.md for the legal rules and their sources.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* Supported span for terms and date text: years 1 to 9999. */
#define MIN_YEAR 1
#define MAX_YEAR 9999
/* Upper bounds on a term's amount per unit; the result must still fall in
 * MIN_YEAR..MAX_YEAR.  They only keep the arithmetic within range. */
#define MAX_DAYS 4000000L
#define MAX_MONTHS 120000L
#define MAX_YEARS 10000L

/* Atw art. 4: longer terms get no Atw treatment. */
#define ATW_MAX_DAYS 90
#define ATW_MAX_WEEKS 12
#define ATW_MAX_MONTHS 3

#define DECREE_NAME "bij Koninklijk Besluit aangewezen dag"

typedef struct added_day {
  cal_day day;
  char *name;
  int64_t from; /* counts for what is computed at or after this time (INT64_MIN: always) */
} added_day;

struct cal_calendar {
  added_day *v; /* sorted by day, unique days */
  int n, cap;
  int64_t asof; /* added days with a later `from` do not count (INT64_MAX: all count) */
};

/* Days added by Royal Decree (Atw art. 3(3)), Stcrt. 2025, 24713. */
static const struct {
  int y, m, d;
} builtin_decree[] = {
    {2026, 1, 2}, {2026, 5, 15}, {2027, 5, 7}, {2028, 4, 28}, {2028, 5, 26},
};

/* ------------------------------------------------------------------ */
/* Civil date arithmetic                                               */
/* ------------------------------------------------------------------ */

static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0)))
    q--;
  return q;
}

static int64_t floor_mod(int64_t a, int64_t b) { return a - floor_div(a, b) * b; }

static int is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int days_in_month(int64_t y, int m) {
  static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m == 2 && is_leap(y))
    return 29;
  return dim[m - 1];
}

/* days_from_civil: valid for any year the int64 arithmetic can hold. */
static int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = floor_div(y, 400);
  int64_t yoe = y - era * 400;                                  /* [0, 399] */
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1; /* [0, 365] */
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;          /* [0, 146096] */
  return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d) {
  z += 719468;
  int64_t era = floor_div(z, 146097);
  int64_t doe = z - era * 146097;                                       /* [0, 146096] */
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);                /* [0, 365] */
  int64_t mp = (5 * doy + 2) / 153;                                     /* [0, 11] */
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2);
}

static cal_day clamp_day(int64_t z) {
  if (z > INT32_MAX)
    return INT32_MAX;
  if (z <= INT32_MIN)
    return INT32_MIN + 1; /* CAL_NO_DAY stays reserved */
  return (cal_day)z;
}

cal_day cal_from_ymd(int y, int m, int d) {
  if (m < 1 || m > 12)
    return CAL_NO_DAY;
  return clamp_day(days_from_civil(y, m, d));
}

void cal_to_ymd(cal_day day, int *y, int *m, int *d) {
  int64_t yy;
  int mm, dd;
  civil_from_days(day, &yy, &mm, &dd);
  if (y)
    *y = (int)yy; /* |yy| < 6e6 for any int32 day */
  if (m)
    *m = mm;
  if (d)
    *d = dd;
}

int cal_weekday(cal_day day) {
  /* 1970-01-01 was a Thursday (3 when Monday is 0). */
  return (int)floor_mod((int64_t)day + 3, 7);
}

static cal_day min_day(void) { return (cal_day)days_from_civil(MIN_YEAR, 1, 1); }
static cal_day max_day(void) { return (cal_day)days_from_civil(MAX_YEAR, 12, 31); }

int cal_parse_date(const char *s, cal_day *out) {
  if (!s || !out)
    return -1;
  for (int i = 0; i < 10; i++) {
    if (i == 4 || i == 7) {
      if (s[i] != '-')
        return -1;
    } else if (s[i] < '0' || s[i] > '9') {
      return -1; /* also stops at the NUL of a short string */
    }
  }
  if (s[10] != '\0')
    return -1;
  int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
  int m = (s[5] - '0') * 10 + (s[6] - '0');
  int d = (s[8] - '0') * 10 + (s[9] - '0');
  if (y < MIN_YEAR || m < 1 || m > 12 || d < 1 || d > days_in_month(y, m))
    return -1;
  *out = (cal_day)days_from_civil(y, m, d);
  return 0;
}

void cal_format_date(cal_day day, char out[11]) {
  int64_t y;
  int m, d;
  if (day == CAL_NO_DAY || day < min_day() || day > max_day()) {
    memcpy(out, "0000-00-00", 11); /* outside the supported years */
    return;
  }
  civil_from_days(day, &y, &m, &d);
  int yy = (int)y;
  out[0] = (char)('0' + yy / 1000);
  out[1] = (char)('0' + yy / 100 % 10);
  out[2] = (char)('0' + yy / 10 % 10);
  out[3] = (char)('0' + yy % 10);
  out[4] = '-';
  out[5] = (char)('0' + m / 10);
  out[6] = (char)('0' + m % 10);
  out[7] = '-';
  out[8] = (char)('0' + d / 10);
  out[9] = (char)('0' + d % 10);
  out[10] = '\0';
}

/* ------------------------------------------------------------------ */
/* Europe/Amsterdam                                                    */
/* ------------------------------------------------------------------ */

/* The last Sunday of month m of year y. */
static int64_t last_sunday(int64_t y, int m) {
  int64_t last = days_from_civil(y, m, days_in_month(y, m));
  return last - floor_mod(last + 3 - 6, 7); /* weekday(last) - Sunday(6) */
}

cal_day cal_local_day(int64_t utc) {
  /* Beyond +-2e14 s the day is out of cal_day range anyway; clamping keeps
   * the arithmetic below from overflowing. */
  if (utc > INT64_C(200000000000000))
    utc = INT64_C(200000000000000);
  if (utc < -INT64_C(200000000000000))
    utc = -INT64_C(200000000000000);
  int64_t day = floor_div(utc, 86400);
  int64_t sec = floor_mod(utc, 86400);
  int64_t y;
  int m, d;
  civil_from_days(day, &y, &m, &d);
  /* CEST from last Sunday of March 01:00 UTC to last Sunday of October 01:00 UTC. */
  int64_t start = last_sunday(y, 3), end = last_sunday(y, 10);
  int cest = (day > start || (day == start && sec >= 3600)) &&
             (day < end || (day == end && sec < 3600));
  sec += cest ? 7200 : 3600;
  return clamp_day(day + (sec >= 86400));
}

int64_t cal_local_midnight(cal_day day) {
  int64_t y;
  int m, d;
  civil_from_days(day, &y, &m, &d);
  /* Local 00:00 falls in CEST on the days after the March switch day up to
   * and including the October switch day (that switch is at 03:00 CEST). */
  int cest = day > last_sunday(y, 3) && day <= last_sunday(y, 10);
  return (int64_t)day * 86400 - (cest ? 7200 : 3600);
}

/* ------------------------------------------------------------------ */
/* Holidays                                                            */
/* ------------------------------------------------------------------ */

/* Easter Sunday of year y (y >= 1): the anonymous Gregorian algorithm
 * (Meeus/Jones/Butcher). */
static int64_t easter(int64_t y) {
  int64_t a = y % 19, b = y / 100, c = y % 100;
  int64_t d = b / 4, e = b % 4, f = (b + 8) / 25, g = (b - f + 1) / 3;
  int64_t h = (19 * a + b - d - g + 15) % 30;
  int64_t i = c / 4, k = c % 4;
  int64_t l = (32 + 2 * e + 2 * i - h - k) % 7;
  int64_t mm = (a + 11 * h + 22 * l) / 451;
  int month = (int)((h + l - 7 * mm + 114) / 31);
  int day = (int)((h + l - 7 * mm + 114) % 31) + 1;
  return days_from_civil(y, month, day);
}

/* The Atw art. 3 days of one year, with their names. */
typedef struct yearset {
  int64_t year; /* INT64_MIN: empty */
  int64_t day[9];
  const char *name[9];
  int n;
} yearset;

static void yearset_fill(yearset *ys, int64_t y) {
  ys->year = y;
  ys->n = 0;
#define ADD(dd, nm) (ys->day[ys->n] = (dd), ys->name[ys->n] = (nm), ys->n++)
  ADD(days_from_civil(y, 1, 1), "Nieuwjaarsdag");
  if (y >= 1) { /* the Easter algorithm wants positive years */
    int64_t e = easter(y);
    ADD(e - 2, "Goede Vrijdag");
    ADD(e + 1, "Tweede Paasdag");
    ADD(e + 39, "Hemelvaartsdag");
    ADD(e + 50, "Tweede Pinksterdag");
  }
  int64_t kd = days_from_civil(y, 4, 27);
  if (floor_mod(kd + 3, 7) == 6) /* 27 April a Sunday: celebrated on the 26th */
    kd--;
  ADD(kd, "Koningsdag");
  ADD(days_from_civil(y, 5, 5), "Bevrijdingsdag");
  ADD(days_from_civil(y, 12, 25), "Eerste Kerstdag");
  ADD(days_from_civil(y, 12, 26), "Tweede Kerstdag");
#undef ADD
}

static const char *yearset_find(const yearset *ys, int64_t day) {
  for (int i = 0; i < ys->n; i++)
    if (ys->day[i] == day)
      return ys->name[i];
  return NULL;
}

/* Index of `day` in cal->v, or -(insertion point) - 1. */
static int added_find(const cal_calendar *cal, cal_day day) {
  int lo = 0, hi = cal->n;
  while (lo < hi) {
    int mid = lo + (hi - lo) / 2;
    if (cal->v[mid].day < day)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo < cal->n && cal->v[lo].day == day)
    return lo;
  return -lo - 1;
}

/* Holiday lookup with a caller-owned per-year cache (NULL: none). */
static int holiday_cached(const cal_calendar *cal, yearset *cache, cal_day day,
                          const char **name) {
  yearset local;
  int64_t y;
  int m, d;
  civil_from_days(day, &y, &m, &d);
  yearset *ys = cache ? cache : &local;
  if (!cache || cache->year != y)
    yearset_fill(ys, y);
  const char *nm = yearset_find(ys, day);
  if (!nm && cal) {
    int i = added_find(cal, day);
    if (i >= 0 && cal->v[i].from <= cal->asof)
      nm = cal->v[i].name;
  }
  if (name)
    *name = nm;
  return nm != NULL;
}

static int rest_cached(const cal_calendar *cal, yearset *cache, cal_day day) {
  return cal_weekday(day) >= 5 || holiday_cached(cal, cache, day, NULL);
}

int cal_is_holiday(const cal_calendar *cal, cal_day day, const char **name) {
  return holiday_cached(cal, NULL, day, name);
}

int cal_is_rest_day(const cal_calendar *cal, cal_day day) {
  return rest_cached(cal, NULL, day);
}

int cal_add_holiday(cal_calendar *cal, cal_day day, const char *name) {
  return cal_add_holiday_from(cal, day, name, INT64_MIN);
}

void cal_set_asof(cal_calendar *cal, int64_t t) {
  if (cal) cal->asof = t;
}

int cal_add_holiday_from(cal_calendar *cal, cal_day day, const char *name, int64_t from) {
  if (!cal)
    return CASE_MISUSE;
  if (day == CAL_NO_DAY)
    return CASE_INVALID;
  char *copy = malloc(strlen(name ? name : DECREE_NAME) + 1);
  if (!copy)
    return CASE_NOMEM;
  strcpy(copy, name ? name : DECREE_NAME);
  int i = added_find(cal, day);
  if (i >= 0) { /* the same day again: the newest name wins, the earliest time */
    free(cal->v[i].name);
    cal->v[i].name = copy;
    if (from < cal->v[i].from) cal->v[i].from = from;
    return CASE_OK;
  }
  i = -i - 1;
  if (cal->n == cal->cap) {
    int ncap = cal->cap ? cal->cap * 2 : 16;
    added_day *nv = realloc(cal->v, (size_t)ncap * sizeof *nv);
    if (!nv) {
      free(copy);
      return CASE_NOMEM;
    }
    cal->v = nv;
    cal->cap = ncap;
  }
  memmove(cal->v + i + 1, cal->v + i, (size_t)(cal->n - i) * sizeof *cal->v);
  cal->v[i].day = day;
  cal->v[i].name = copy;
  cal->v[i].from = from;
  cal->n++;
  return CASE_OK;
}

int cal_open(cal_calendar **out) {
  if (!out)
    return CASE_MISUSE;
  *out = NULL;
  cal_calendar *cal = calloc(1, sizeof *cal);
  if (!cal)
    return CASE_NOMEM;
  cal->asof = INT64_MAX;
  for (size_t i = 0; i < sizeof builtin_decree / sizeof builtin_decree[0]; i++) {
    int rc = cal_add_holiday(
        cal, cal_from_ymd(builtin_decree[i].y, builtin_decree[i].m, builtin_decree[i].d), NULL);
    if (rc != CASE_OK) {
      cal_close(cal);
      return rc;
    }
  }
  *out = cal;
  return CASE_OK;
}

void cal_close(cal_calendar *cal) {
  if (!cal)
    return;
  for (int i = 0; i < cal->n; i++)
    free(cal->v[i].name);
  free(cal->v);
  free(cal);
}

/* ------------------------------------------------------------------ */
/* Terms                                                               */
/* ------------------------------------------------------------------ */

/* `anchor` (day 0) plus n months: the same date, or the month's last day. */
static int64_t add_months(cal_day anchor, int64_t n) {
  int64_t y;
  int m, d;
  civil_from_days(anchor, &y, &m, &d);
  int64_t total = y * 12 + (m - 1) + n;
  int64_t ny = floor_div(total, 12);
  int nm = (int)floor_mod(total, 12) + 1;
  int dim = days_in_month(ny, nm);
  return days_from_civil(ny, nm, d > dim ? dim : d);
}

/* The n-th day from `start` (day 1 = start) that is not a rest day, or
 * INT64_MAX past MAX_YEAR. */
static int64_t nth_working_day(const cal_calendar *cal, cal_day start, long n) {
  yearset cache;
  cache.year = INT64_MIN;
  int64_t limit = max_day();
  int64_t day = start;
  long count = 0;
  for (;; day++) {
    if (day > limit)
      return INT64_MAX;
    if (!rest_cached(cal, &cache, (cal_day)day) && ++count == n)
      return day;
  }
}

/* Atw art. 2 then art. 1 on a term running from `start` to `last`. */
static int64_t atw_shift(const cal_calendar *cal, cal_day start, int64_t last) {
  yearset cache;
  cache.year = INT64_MIN;
  int64_t limit = max_day();
  int working = 0;
  for (int64_t d = start; d <= last && working < 2; d++)
    working += !rest_cached(cal, &cache, (cal_day)d);
  /* Art. 2: a term of 3 days or more is extended until it holds two days that
   * are no Saturday, Sunday or holiday (the extension then ends on such a day). */
  while (last - start + 1 >= 3 && working < 2) {
    if (++last > limit)
      return INT64_MAX;
    working += !rest_cached(cal, &cache, (cal_day)last);
  }
  /* Art. 1: a term ending on a Saturday, Sunday or holiday ends on the next
   * day that is none of those. */
  while (rest_cached(cal, &cache, (cal_day)last))
    if (++last > limit)
      return INT64_MAX;
  return last;
}

/* Does the Atw apply to this term (art. 4)?  Only day/week/month terms of at
 * least 3 days (art. 2) or any length (art. 1) up to 90 days, 12 weeks or
 * 3 months; never hours and smaller, years or working days (the latter end
 * on a working day by construction). */
static int atw_applies(long amount, cs_unit unit) {
  switch (unit) {
  case UNIT_DAYS: return amount <= ATW_MAX_DAYS;
  case UNIT_WEEKS: return amount <= ATW_MAX_WEEKS;
  case UNIT_MONTHS: return amount <= ATW_MAX_MONTHS;
  default: return 0;
  }
}

int cal_term(const cal_calendar *cal, cs_clock clock, int64_t trigger, long amount,
             cs_unit unit, int same_day, int64_t *due, cal_day *last_day) {
  if (!due || !last_day)
    return CASE_MISUSE;
  *due = trigger;
  *last_day = CAL_NO_DAY;
  if (amount < 0)
    return CASE_INVALID;
  if (clock != CLOCK_PLAIN && clock != CLOCK_ATW && clock != CLOCK_EU &&
      clock != CLOCK_PROCEDURE)
    return CASE_INVALID;

  int64_t mult = 0;
  switch (unit) {
  case UNIT_SECONDS: mult = 1; break;
  case UNIT_MINUTES: mult = 60; break;
  case UNIT_HOURS: mult = 3600; break;
  case UNIT_DAYS:
  case UNIT_WORKING_DAYS:
  case UNIT_WEEKS:
  case UNIT_MONTHS:
  case UNIT_YEARS: break;
  default: return CASE_INVALID;
  }
  if (mult) { /* hours and smaller: exact seconds on every clock */
    if ((int64_t)amount > INT64_MAX / mult)
      return CASE_INVALID;
    int64_t secs = (int64_t)amount * mult;
    if (trigger > 0 && secs > INT64_MAX - trigger)
      return CASE_INVALID;
    *due = trigger + secs;
    return CASE_OK;
  }

  if (clock == CLOCK_PROCEDURE && unit != UNIT_DAYS && unit != UNIT_WORKING_DAYS)
    return CASE_INVALID; /* procedure days count days only */

  cal_day today = cal_local_day(trigger);
  if (today < min_day() || today > max_day())
    return CASE_INVALID;
  cal_day start = same_day ? today : today + 1; /* day 1 */
  cal_day anchor = start - 1;                   /* day 0 */

  if (amount == 0) { /* no days to run: the term is over at once */
    *last_day = today;
    return CASE_OK;
  }

  int64_t last;
  if (unit == UNIT_WORKING_DAYS || clock == CLOCK_PROCEDURE) {
    if (amount > MAX_DAYS)
      return CASE_INVALID;
    last = nth_working_day(cal, start, amount);
  } else {
    switch (unit) {
    case UNIT_DAYS:
      if (amount > MAX_DAYS)
        return CASE_INVALID;
      last = (int64_t)anchor + amount;
      break;
    case UNIT_WEEKS:
      if (amount > MAX_DAYS / 7)
        return CASE_INVALID;
      last = (int64_t)anchor + 7 * (int64_t)amount;
      break;
    case UNIT_MONTHS:
      if (amount > MAX_MONTHS)
        return CASE_INVALID;
      last = add_months(anchor, amount);
      break;
    default: /* UNIT_YEARS */
      if (amount > MAX_YEARS)
        return CASE_INVALID;
      last = add_months(anchor, 12 * (int64_t)amount);
      break;
    }
    if (last > max_day())
      return CASE_INVALID;
    if (clock == CLOCK_ATW && atw_applies(amount, unit))
      last = atw_shift(cal, start, last);
  }
  if (last > max_day())
    return CASE_INVALID;
  *last_day = (cal_day)last;
  *due = cal_local_midnight((cal_day)last + 1);
  return CASE_OK;
}

const char *cal_clock_name(cs_clock c) {
  switch (c) {
  case CLOCK_PLAIN: return "plain";
  case CLOCK_ATW: return "atw";
  case CLOCK_EU: return "eu";
  case CLOCK_PROCEDURE: return "procedure";
  }
  return "unknown";
}

int cal_clock_parse(const char *s, cs_clock *out) {
  static const cs_clock all[] = {CLOCK_PLAIN, CLOCK_ATW, CLOCK_EU, CLOCK_PROCEDURE};
  if (!s || !out)
    return -1;
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
    if (strcmp(s, cal_clock_name(all[i])) == 0) {
      *out = all[i];
      return 0;
    }
  }
  return -1;
}

const char *cal_unit_name(cs_unit u) {
  switch (u) {
  case UNIT_SECONDS: return "seconds";
  case UNIT_MINUTES: return "minutes";
  case UNIT_HOURS: return "hours";
  case UNIT_DAYS: return "days";
  case UNIT_WORKING_DAYS: return "working_days";
  case UNIT_WEEKS: return "weeks";
  case UNIT_MONTHS: return "months";
  case UNIT_YEARS: return "years";
  }
  return "unknown";
}

/* ------------------------------------------------------------------ */
/* Duration text                                                       */
/* ------------------------------------------------------------------ */

int cal_duration_parse(const char *s, long *amount, char **param, cs_unit *unit) {
  static const struct {
    const char *name;
    cs_unit unit;
  } units[] = {{"second", UNIT_SECONDS},    {"seconds", UNIT_SECONDS},
               {"minute", UNIT_MINUTES},    {"minutes", UNIT_MINUTES},
               {"hour", UNIT_HOURS},        {"hours", UNIT_HOURS},
               {"day", UNIT_DAYS},          {"days", UNIT_DAYS},
               {"working day", UNIT_WORKING_DAYS}, {"working days", UNIT_WORKING_DAYS},
               {"week", UNIT_WEEKS},        {"weeks", UNIT_WEEKS},
               {"month", UNIT_MONTHS},      {"months", UNIT_MONTHS},
               {"year", UNIT_YEARS},        {"years", UNIT_YEARS}};
  *amount = 0;
  if (param) *param = NULL;
  if (!s) return -1;
  const char *pname = NULL;
  size_t plen = 0;
  while (*s == ' ') s++;
  if (s[0] == '$' && s[1] == '{' && param) {
    const char *end = strchr(s, '}');
    if (!end || end == s + 2) return -1;
    pname = s + 2;
    plen = (size_t)(end - pname);
    for (const char *q = s + 2; q < end; q++)
      if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') ||
            *q == '_'))
        return -1;
    s = end + 1;
  } else {
    if (*s < '0' || *s > '9') return -1;
    long v = 0;
    while (*s >= '0' && *s <= '9') {
      v = v * 10 + (*s++ - '0');
      if (v > CAL_DURATION_MAX) return -2;
    }
    *amount = v;
  }
  if (*s != ' ') return -1;
  /* The unit: the remaining words, joined by single spaces. */
  char u[32];
  size_t n = 0;
  while (*s) {
    while (*s == ' ') s++;
    if (!*s) break;
    if (n) {
      if (n + 1 >= sizeof u) return -1;
      u[n++] = ' ';
    }
    while (*s && *s != ' ') {
      if (n + 1 >= sizeof u) return -1;
      u[n++] = *s++;
    }
  }
  u[n] = '\0';
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
    if (strcmp(u, units[i].name) != 0) continue;
    *unit = units[i].unit;
    if (pname) {
      *param = malloc(plen + 1);
      if (!*param) return -3;
      memcpy(*param, pname, plen);
      (*param)[plen] = '\0';
    }
    return 0;
  }
  return -1;
}
