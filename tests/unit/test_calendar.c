/*
 * Tests for calendar.c: civil dates, Europe/Amsterdam local days, the Atw
 * holidays and legal terms on the four clocks.
 *
 * Every expected date below was worked out by hand from a paper calendar
 * (the reasoning is in the comment next to the row), not copied from the
 * implementation.  Reference facts used throughout:
 *   Easter Sunday: 2024-03-31, 2025-04-20, 2026-04-05, 2027-03-28, 2028-04-16.
 *   2026-01-01 is a Thursday; 2026-04-03 a Friday; 2026-12-25 a Friday.
 *   DST 2026: CEST from Sun 03-29 01:00 UTC to Sun 10-25 01:00 UTC, so local
 *   midnight is 23:00 UTC the day before in winter and 22:00 UTC in summer.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"

/* "YYYY-MM-DD" -> day; fails the test on a bad literal. */
static cal_day D(const char *s) {
  cal_day d = CAL_NO_DAY;
  assert_int_equal(cal_parse_date(s, &d), 0);
  return d;
}

/* UTC instant of a date at hh:mm UTC. */
static int64_t utc(const char *date, int hh, int mm) {
  return (int64_t)D(date) * 86400 + hh * 3600 + mm * 60;
}

static int setup(void **state) {
  cal_calendar *cal = NULL;
  assert_int_equal(cal_open(&cal), CASE_OK);
  assert_non_null(cal);
  *state = cal;
  return 0;
}

static int teardown(void **state) {
  cal_close(*state);
  return 0;
}

/* ------------------------------------------------------------------ */
/* Dates                                                               */
/* ------------------------------------------------------------------ */

static void test_ymd(void **state) {
  (void)state;
  /* Day numbers from a count of days since 1970-01-01. */
  assert_int_equal(cal_from_ymd(1970, 1, 1), 0);
  assert_int_equal(cal_from_ymd(1969, 12, 31), -1);
  assert_int_equal(cal_from_ymd(2000, 2, 29), 11016);
  assert_int_equal(cal_from_ymd(2026, 1, 1), 20454);
  assert_int_equal(cal_from_ymd(1, 1, 1), -719162);
  assert_int_equal(cal_from_ymd(9999, 12, 31), 2932896);
  assert_int_equal(cal_from_ymd(2026, 13, 1), CAL_NO_DAY);

  int y, m, d;
  cal_to_ymd(11016, &y, &m, &d);
  assert_int_equal(y, 2000);
  assert_int_equal(m, 2);
  assert_int_equal(d, 29);
  cal_to_ymd(-1, &y, &m, &d);
  assert_int_equal(y, 1969);
  assert_int_equal(m, 12);
  assert_int_equal(d, 31);
  /* Round trip over 2024-2028 day by day. */
  for (cal_day x = cal_from_ymd(2024, 1, 1); x <= cal_from_ymd(2028, 12, 31); x++) {
    cal_to_ymd(x, &y, &m, &d);
    assert_int_equal(cal_from_ymd(y, m, d), x);
  }

  /* 0 = Monday ... 6 = Sunday.  1970-01-01 was a Thursday. */
  assert_int_equal(cal_weekday(0), 3);
  assert_int_equal(cal_weekday(-1), 2);              /* Wed 1969-12-31 */
  assert_int_equal(cal_weekday(D("2026-01-01")), 3); /* Thursday */
  assert_int_equal(cal_weekday(D("2025-04-27")), 6); /* Sunday */
  assert_int_equal(cal_weekday(D("0001-01-01")), 0); /* Monday */
}

static void test_parse_format(void **state) {
  (void)state;
  cal_day d = 12345;
  assert_int_equal(cal_parse_date("1970-01-01", &d), 0);
  assert_int_equal(d, 0);
  assert_int_equal(cal_parse_date("2024-02-29", &d), 0); /* leap year */
  assert_int_equal(d, cal_from_ymd(2024, 2, 29));
  assert_int_equal(cal_parse_date("0001-01-01", &d), 0);
  assert_int_equal(cal_parse_date("9999-12-31", &d), 0);
  assert_int_equal(d, 2932896);

  static const char *bad[] = {
      "2026-02-30", /* no such date */
      "2025-02-29", /* 2025 is no leap year */
      "1900-02-29", /* century, no leap year */
      "2026-2-3",   /* not zero-padded */
      "2026-02-03x", "2026-02-03 ", " 2026-02-03", "2026/02/03", "2026-13-01",
      "2026-00-10", "2026-01-00", "2026-01-32", "0000-01-01", "", "2026-01",
      "+026-01-01", "2026-0a-01", "20260101",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    d = 777;
    if (cal_parse_date(bad[i], &d) != -1)
      fail_msg("accepted \"%s\"", bad[i]);
    assert_int_equal(d, 777); /* untouched on failure */
  }
  assert_int_equal(cal_parse_date(NULL, &d), -1);
  assert_int_equal(cal_parse_date("2026-01-01", NULL), -1);

  char buf[11];
  cal_format_date(0, buf);
  assert_string_equal(buf, "1970-01-01");
  cal_format_date(11016, buf);
  assert_string_equal(buf, "2000-02-29");
  cal_format_date(-719162, buf);
  assert_string_equal(buf, "0001-01-01");
  cal_format_date(2932896, buf);
  assert_string_equal(buf, "9999-12-31");
  cal_format_date(CAL_NO_DAY, buf);
  assert_string_equal(buf, "0000-00-00");
  cal_format_date(2932897, buf); /* 10000-01-01: outside the supported years */
  assert_string_equal(buf, "0000-00-00");
}

/* ------------------------------------------------------------------ */
/* Europe/Amsterdam                                                    */
/* ------------------------------------------------------------------ */

static void test_local_day(void **state) {
  (void)state;
  /* Spring 2026: clocks go 02:00 CET -> 03:00 CEST on Sun 03-29 (01:00 UTC).
   * 1774738800 = 2026-03-28T23:00Z = local 2026-03-29 00:00 CET. */
  assert_int_equal(cal_local_day(1774738800 - 1), D("2026-03-28")); /* 23:59:59 CET */
  assert_int_equal(cal_local_day(1774738800), D("2026-03-29"));
  assert_int_equal(cal_local_day(utc("2026-03-29", 0, 59)), D("2026-03-29")); /* 01:59 CET */
  assert_int_equal(cal_local_day(utc("2026-03-29", 1, 0)), D("2026-03-29"));  /* 03:00 CEST */
  /* 1774821600 = 2026-03-29T22:00Z = local 2026-03-30 00:00 CEST. */
  assert_int_equal(cal_local_day(1774821600 - 1), D("2026-03-29"));
  assert_int_equal(cal_local_day(1774821600), D("2026-03-30"));
  /* Autumn 2026: 03:00 CEST -> 02:00 CET on Sun 10-25 (01:00 UTC).
   * 1792879200 = 2026-10-24T22:00Z = local 2026-10-25 00:00 CEST. */
  assert_int_equal(cal_local_day(1792879200 - 1), D("2026-10-24"));
  assert_int_equal(cal_local_day(1792879200), D("2026-10-25"));
  assert_int_equal(cal_local_day(utc("2026-10-25", 0, 59)), D("2026-10-25")); /* 02:59 CEST */
  assert_int_equal(cal_local_day(utc("2026-10-25", 1, 0)), D("2026-10-25"));  /* 02:00 CET */
  /* 1792969200 = 2026-10-25T23:00Z = local 2026-10-26 00:00 CET. */
  assert_int_equal(cal_local_day(1792969200 - 1), D("2026-10-25"));
  assert_int_equal(cal_local_day(1792969200), D("2026-10-26"));
  /* Winter and summer middays. */
  assert_int_equal(cal_local_day(utc("2026-01-15", 22, 59)), D("2026-01-15"));
  assert_int_equal(cal_local_day(utc("2026-01-15", 23, 0)), D("2026-01-16"));
  assert_int_equal(cal_local_day(utc("2026-07-15", 21, 59)), D("2026-07-15"));
  assert_int_equal(cal_local_day(utc("2026-07-15", 22, 0)), D("2026-07-16"));
  /* Before 1970: 1969-12-31T23:00Z is local 1970-01-01 00:00 CET. */
  assert_int_equal(cal_local_day(-3600), 0);
  assert_int_equal(cal_local_day(-3601), -1);
  /* Extremes do not crash. */
  (void)cal_local_day(INT64_MAX);
  (void)cal_local_day(INT64_MIN);
}

static void test_local_midnight(void **state) {
  (void)state;
  /* Values checked against the IANA zone Europe/Amsterdam. */
  assert_int_equal(cal_local_midnight(D("2026-03-29")), 1774738800); /* 03-28T23:00Z, CET */
  assert_int_equal(cal_local_midnight(D("2026-03-30")), 1774821600); /* 03-29T22:00Z, CEST */
  assert_int_equal(cal_local_midnight(D("2026-10-25")), 1792879200); /* 10-24T22:00Z, CEST */
  assert_int_equal(cal_local_midnight(D("2026-10-26")), 1792969200); /* 10-25T23:00Z, CET */
  /* 2025: last Sundays are 03-30 and 10-26. */
  assert_int_equal(cal_local_midnight(D("2025-03-30")), 1743289200); /* 03-29T23:00Z */
  assert_int_equal(cal_local_midnight(D("2025-03-31")), utc("2025-03-30", 22, 0));
  assert_int_equal(cal_local_midnight(D("2025-10-26")), 1761429600); /* 10-25T22:00Z */
  assert_int_equal(cal_local_midnight(D("2025-10-27")), utc("2025-10-26", 23, 0));
  /* 2024: last Sundays are 03-31 and 10-27. */
  assert_int_equal(cal_local_midnight(D("2024-03-31")), 1711839600); /* 03-30T23:00Z */
  assert_int_equal(cal_local_midnight(D("2024-10-27")), 1729980000); /* 10-26T22:00Z */
  assert_int_equal(cal_local_midnight(D("2024-10-28")), utc("2024-10-27", 23, 0));
  /* 2028: last Sunday of March is 03-26, of October 10-29. */
  assert_int_equal(cal_local_midnight(D("2028-03-26")), utc("2028-03-25", 23, 0));
  assert_int_equal(cal_local_midnight(D("2028-03-27")), utc("2028-03-26", 22, 0));
  assert_int_equal(cal_local_midnight(D("2028-10-29")), utc("2028-10-28", 22, 0));
  assert_int_equal(cal_local_midnight(D("2028-10-30")), utc("2028-10-29", 23, 0));
  /* Local midnight always maps back to its own day, and one second before
   * it to the day before, 2024-2028. */
  for (cal_day x = D("2024-01-01"); x <= D("2028-12-31"); x++) {
    assert_int_equal(cal_local_day(cal_local_midnight(x)), x);
    assert_int_equal(cal_local_day(cal_local_midnight(x) - 1), x - 1);
  }
}

/* ------------------------------------------------------------------ */
/* Holidays                                                            */
/* ------------------------------------------------------------------ */

static const struct {
  const char *date, *name;
} holidays[] = {
    /* 2024: Easter Sun 03-31. */
    {"2024-01-01", "Nieuwjaarsdag"},
    {"2024-03-29", "Goede Vrijdag"},      /* Easter - 2 */
    {"2024-04-01", "Tweede Paasdag"},     /* Easter + 1 */
    {"2024-04-27", "Koningsdag"},         /* a Saturday: not moved */
    {"2024-05-05", "Bevrijdingsdag"},     /* a Sunday */
    {"2024-05-09", "Hemelvaartsdag"},     /* 03-31 + 39: Thu */
    {"2024-05-20", "Tweede Pinksterdag"}, /* 03-31 + 50: Mon */
    {"2024-12-25", "Eerste Kerstdag"},
    {"2024-12-26", "Tweede Kerstdag"},
    /* 2025: Easter Sun 04-20. */
    {"2025-01-01", "Nieuwjaarsdag"},
    {"2025-04-18", "Goede Vrijdag"},
    {"2025-04-21", "Tweede Paasdag"},
    {"2025-04-26", "Koningsdag"},         /* 04-27 is a Sunday: Sat 04-26 */
    {"2025-05-05", "Bevrijdingsdag"},
    {"2025-05-29", "Hemelvaartsdag"},     /* 04-20 + 39 */
    {"2025-06-09", "Tweede Pinksterdag"}, /* 04-20 + 50 */
    {"2025-12-25", "Eerste Kerstdag"},
    {"2025-12-26", "Tweede Kerstdag"},
    /* 2026: Easter Sun 04-05; the domain notes' worked example. */
    {"2026-01-01", "Nieuwjaarsdag"},
    {"2026-01-02", "bij Koninklijk Besluit aangewezen dag"},
    {"2026-04-03", "Goede Vrijdag"},
    {"2026-04-06", "Tweede Paasdag"},
    {"2026-04-27", "Koningsdag"},
    {"2026-05-05", "Bevrijdingsdag"},
    {"2026-05-14", "Hemelvaartsdag"},
    {"2026-05-15", "bij Koninklijk Besluit aangewezen dag"},
    {"2026-05-25", "Tweede Pinksterdag"},
    {"2026-12-25", "Eerste Kerstdag"},
    {"2026-12-26", "Tweede Kerstdag"},
    /* 2027: Easter Sun 03-28. */
    {"2027-01-01", "Nieuwjaarsdag"},
    {"2027-03-26", "Goede Vrijdag"},
    {"2027-03-29", "Tweede Paasdag"},
    {"2027-04-27", "Koningsdag"},
    {"2027-05-05", "Bevrijdingsdag"},
    {"2027-05-06", "Hemelvaartsdag"},     /* 03-28 + 39 */
    {"2027-05-07", "bij Koninklijk Besluit aangewezen dag"},
    {"2027-05-17", "Tweede Pinksterdag"}, /* 03-28 + 50 */
    {"2027-12-25", "Eerste Kerstdag"},
    {"2027-12-26", "Tweede Kerstdag"},
    /* 2028: Easter Sun 04-16. */
    {"2028-01-01", "Nieuwjaarsdag"},
    {"2028-04-14", "Goede Vrijdag"},
    {"2028-04-17", "Tweede Paasdag"},
    {"2028-04-27", "Koningsdag"},
    {"2028-04-28", "bij Koninklijk Besluit aangewezen dag"},
    {"2028-05-05", "Bevrijdingsdag"},
    {"2028-05-25", "Hemelvaartsdag"},     /* 04-16 + 39 */
    {"2028-05-26", "bij Koninklijk Besluit aangewezen dag"},
    {"2028-06-05", "Tweede Pinksterdag"}, /* 04-16 + 50 */
    {"2028-12-25", "Eerste Kerstdag"},
    {"2028-12-26", "Tweede Kerstdag"},
};

static void test_holidays_table(void **state) {
  cal_calendar *cal = *state;
  for (size_t i = 0; i < sizeof holidays / sizeof holidays[0]; i++) {
    const char *name = NULL;
    if (!cal_is_holiday(cal, D(holidays[i].date), &name))
      fail_msg("%s is not a holiday", holidays[i].date);
    assert_non_null(name);
    if (strcmp(name, holidays[i].name) != 0)
      fail_msg("%s: \"%s\", expected \"%s\"", holidays[i].date, name, holidays[i].name);
    assert_true(cal_is_rest_day(cal, D(holidays[i].date)));
  }
  /* The table is the whole list: no other day of 2024-2028 is a holiday. */
  int count = 0;
  for (cal_day x = D("2024-01-01"); x <= D("2028-12-31"); x++)
    count += cal_is_holiday(cal, x, NULL);
  assert_int_equal(count, (int)(sizeof holidays / sizeof holidays[0]));
}

static void test_not_holidays(void **state) {
  cal_calendar *cal = *state;
  const char *name = "x";
  assert_false(cal_is_holiday(cal, D("2025-04-27"), &name)); /* King's birthday on a Sunday */
  assert_null(name);
  assert_false(cal_is_holiday(cal, D("2026-04-05"), NULL));  /* Easter Sunday: a Sunday only */
  assert_true(cal_is_rest_day(cal, D("2026-04-05")));
  assert_false(cal_is_holiday(cal, D("2026-05-24"), NULL));  /* Whit Sunday */
  assert_false(cal_is_holiday(cal, D("2026-12-24"), NULL));  /* Christmas Eve */
  assert_false(cal_is_holiday(cal, D("2026-12-31"), NULL));
  assert_false(cal_is_holiday(cal, D("2025-01-02"), NULL));  /* decree day is 2026 only */
  assert_false(cal_is_rest_day(cal, D("2026-04-02")));       /* Maundy Thursday: a Thursday */
  assert_true(cal_is_rest_day(cal, D("2026-04-04")));        /* Saturday */
  assert_false(cal_is_rest_day(cal, D("2026-04-07")));       /* Tuesday after Easter */
  /* A NULL calendar still knows the art. 3 days, but not the decree days. */
  assert_true(cal_is_holiday(NULL, D("2026-04-03"), NULL));
  assert_false(cal_is_holiday(NULL, D("2026-05-15"), NULL));
}

static void test_holidays_other_years(void **state) {
  cal_calendar *cal = *state;
  const char *name = NULL;
  /* Any year: Easter 2038 is 04-25 (the latest possible), so Tweede Paasdag 04-26. */
  assert_true(cal_is_holiday(cal, D("2038-04-26"), &name));
  assert_string_equal(name, "Tweede Paasdag");
  assert_true(cal_is_holiday(cal, D("2038-04-27"), &name)); /* a Tuesday */
  assert_string_equal(name, "Koningsdag");
  /* Easter 2285 is 03-22 (the earliest possible): Goede Vrijdag 03-20. */
  assert_true(cal_is_holiday(cal, D("2285-03-20"), &name));
  assert_string_equal(name, "Goede Vrijdag");
  /* 2031: 04-27 is a Sunday, so Koningsdag is Sat 04-26. */
  assert_true(cal_is_holiday(cal, D("2031-04-26"), &name));
  assert_string_equal(name, "Koningsdag");
  assert_false(cal_is_holiday(cal, D("2031-04-27"), NULL));
}

static void test_add_holiday(void **state) {
  cal_calendar *cal = *state;
  const char *name = NULL;
  assert_false(cal_is_holiday(cal, D("2029-06-01"), NULL));
  assert_int_equal(cal_add_holiday(cal, D("2029-06-01"), NULL), CASE_OK);
  assert_true(cal_is_holiday(cal, D("2029-06-01"), &name));
  assert_string_equal(name, "bij Koninklijk Besluit aangewezen dag");
  /* Adding the same day again renames it, it is still one day. */
  assert_int_equal(cal_add_holiday(cal, D("2029-06-01"), "Kroningsdag"), CASE_OK);
  assert_true(cal_is_holiday(cal, D("2029-06-01"), &name));
  assert_string_equal(name, "Kroningsdag");
  /* Many days, added out of order, are all found (sorted array growth). */
  for (int i = 99; i >= 0; i--)
    assert_int_equal(cal_add_holiday(cal, D("2030-01-07") + 7 * i, "test"), CASE_OK);
  for (int i = 0; i < 100; i++) {
    assert_true(cal_is_holiday(cal, D("2030-01-07") + 7 * i, NULL));
    assert_false(cal_is_holiday(cal, D("2030-01-08") + 7 * i, NULL));
  }
  /* The built-in decree days are still there. */
  assert_true(cal_is_holiday(cal, D("2028-05-26"), NULL));
  /* An art. 3 holiday keeps its own name even when added again. */
  assert_int_equal(cal_add_holiday(cal, D("2026-12-25"), "dubbel"), CASE_OK);
  assert_true(cal_is_holiday(cal, D("2026-12-25"), &name));
  assert_string_equal(name, "Eerste Kerstdag");

  assert_int_equal(cal_add_holiday(NULL, D("2029-06-01"), NULL), CASE_MISUSE);
  assert_int_equal(cal_add_holiday(cal, CAL_NO_DAY, NULL), CASE_INVALID);

  /* Handles do not share state: a fresh calendar lacks the added day. */
  cal_calendar *other = NULL;
  assert_int_equal(cal_open(&other), CASE_OK);
  assert_false(cal_is_holiday(other, D("2029-06-01"), NULL));
  cal_close(other);
  cal_close(NULL); /* accepted, does nothing */
}

/* ------------------------------------------------------------------ */
/* Terms                                                               */
/* ------------------------------------------------------------------ */

typedef struct term_case {
  cs_clock clock;
  const char *trigger; /* the triggering act at 10:00 UTC that day (11:00/12:00 local) */
  long amount;
  cs_unit unit;
  int same_day;
  const char *last;    /* expected last day */
  const char *due_utc; /* expected *due: the UTC date ... */
  int due_hour;        /* ... and hour (22 in summer, 23 in winter) */
} term_case;

#define P CLOCK_PLAIN
#define A CLOCK_ATW
#define E CLOCK_EU
#define R CLOCK_PROCEDURE

static const term_case terms[] = {
    /* --- Weekends --- */
    /* trigger Mon 2026-01-05; day 1 = Tue 01-06; day 5 = Sat 01-10; plain: no shift. */
    {P, "2026-01-05", 5, UNIT_DAYS, 0, "2026-01-10", "2026-01-10", 23},
    /* eu: the same, weekends count and nothing moves. */
    {E, "2026-01-05", 5, UNIT_DAYS, 0, "2026-01-10", "2026-01-10", 23},
    /* atw: Tue-Fri are 4 working days (art. 2 holds); ends Sat -> art. 1: Sun
     * -> Mon 01-12. */
    {A, "2026-01-05", 5, UNIT_DAYS, 0, "2026-01-12", "2026-01-12", 23},
    /* atw 1 day: trigger Fri 2026-01-09; day 1 = Sat 01-10; shorter than 3
     * days so no art. 2; art. 1: Sat, Sun -> Mon 01-12. */
    {A, "2026-01-09", 1, UNIT_DAYS, 0, "2026-01-12", "2026-01-12", 23},

    /* --- Easter 2026 (Goede Vrijdag 04-03, Tweede Paasdag 04-06) --- */
    /* plain 1 week: trigger Fri 03-27; day 0 = 03-27, + 7 = Fri 04-03. */
    {P, "2026-03-27", 1, UNIT_WEEKS, 0, "2026-04-03", "2026-04-03", 22},
    /* atw 1 week: ends Fri 04-03 Goede Vrijdag -> Sat 04, Sun 05, Mon 06
     * Tweede Paasdag -> Tue 04-07. */
    {A, "2026-03-27", 1, UNIT_WEEKS, 0, "2026-04-07", "2026-04-07", 22},
    /* eu 1 week: the same end as plain, holidays do not move it. */
    {E, "2026-03-27", 1, UNIT_WEEKS, 0, "2026-04-03", "2026-04-03", 22},
    /* Two-working-day rule: atw 3 days, trigger Thu 04-02; day 1 = Fri 04-03
     * (GV), day 2 Sat, day 3 Sun 04-05: no working day in the term.  Art. 2:
     * Mon 04-06 is Tweede Paasdag, Tue 04-07 is the 1st, Wed 04-08 the 2nd
     * working day -> ends Wed 04-08. */
    {A, "2026-04-02", 3, UNIT_DAYS, 0, "2026-04-08", "2026-04-08", 22},
    /* The same term on plain: Sun 04-05. */
    {P, "2026-04-02", 3, UNIT_DAYS, 0, "2026-04-05", "2026-04-05", 22},
    /* atw 3 days same_day, trigger Wed 04-01: day 1 Wed, 2 Thu, 3 Fri GV; Wed
     * and Thu make two working days (art. 2 holds); art. 1: Fri GV, Sat, Sun,
     * Mon TP -> Tue 04-07. */
    {A, "2026-04-01", 3, UNIT_DAYS, 1, "2026-04-07", "2026-04-07", 22},
    /* Easter 2024 over the DST switch: atw 1 week from Fri 2024-03-22 ends
     * Fri 03-29 (GV) -> Sat, Sun 03-31, Mon 04-01 TP -> Tue 04-02 (CEST). */
    {A, "2024-03-22", 1, UNIT_WEEKS, 0, "2024-04-02", "2024-04-02", 22},

    /* --- Koningsdag and 5 mei 2026 --- */
    /* atw 1 day, trigger Sun 04-26: day 1 = Mon 04-27 Koningsdag -> Tue 04-28. */
    {A, "2026-04-26", 1, UNIT_DAYS, 0, "2026-04-28", "2026-04-28", 22},
    /* atw 1 week, trigger Tue 04-28: ends Tue 05-05 Bevrijdingsdag -> Wed 05-06. */
    {A, "2026-04-28", 1, UNIT_WEEKS, 0, "2026-05-06", "2026-05-06", 22},
    /* 2025: atw 1 day from Fri 2025-04-25: day 1 Sat 04-26 (Koningsdag and a
     * Saturday), Sun 04-27 -> Mon 04-28. */
    {A, "2025-04-25", 1, UNIT_DAYS, 0, "2025-04-28", "2025-04-28", 22},

    /* --- Ascension 2026 (Thu 05-14) and the decree day Fri 05-15 --- */
    /* atw 2 days, trigger Tue 05-12: day 2 = Thu 05-14; 2 days so no art. 2;
     * art. 1: Thu Hemelvaart, Fri decree, Sat, Sun -> Mon 05-18. */
    {A, "2026-05-12", 2, UNIT_DAYS, 0, "2026-05-18", "2026-05-18", 22},
    /* plain: Thu 05-14. */
    {P, "2026-05-12", 2, UNIT_DAYS, 0, "2026-05-14", "2026-05-14", 22},
    /* atw 3 months, trigger Sat 2026-02-14: 05-14 (Hemelvaart) -> Mon 05-18. */
    {A, "2026-02-14", 3, UNIT_MONTHS, 0, "2026-05-18", "2026-05-18", 22},
    /* atw 12 weeks, trigger Thu 02-19: + 84 days = 02-28 (+9) then +75 =
     * 03-31 (+31), 04-30 (+30), 05-14 (+14) -> shifted to Mon 05-18. */
    {A, "2026-02-19", 12, UNIT_WEEKS, 0, "2026-05-18", "2026-05-18", 22},
    /* atw 13 weeks (over 12: art. 4), trigger Thu 02-12: + 91 = 05-14, stays. */
    {A, "2026-02-12", 13, UNIT_WEEKS, 0, "2026-05-14", "2026-05-14", 22},
    /* atw 90 days (art. 4 limit still in), trigger Fri 02-13: + 90 = 05-14
     * -> Mon 05-18. */
    {A, "2026-02-13", 90, UNIT_DAYS, 0, "2026-05-18", "2026-05-18", 22},
    /* atw 91 days (over 90: art. 4), trigger Thu 02-12: + 91 = 05-14, stays. */
    {A, "2026-02-12", 91, UNIT_DAYS, 0, "2026-05-14", "2026-05-14", 22},

    /* --- Christmas / New Year and the decree day 2 Jan 2026 --- */
    /* atw 1 week, trigger Thu 2025-12-25: ends Thu 2026-01-01 Nieuwjaarsdag
     * -> Fri 01-02 decree day, Sat, Sun -> Mon 2026-01-05. */
    {A, "2025-12-25", 1, UNIT_WEEKS, 0, "2026-01-05", "2026-01-05", 23},
    /* atw 1 week, trigger Fri 2025-12-26: ends Fri 01-02 decree -> Mon 01-05. */
    {A, "2025-12-26", 1, UNIT_WEEKS, 0, "2026-01-05", "2026-01-05", 23},
    /* plain: Fri 01-02. */
    {P, "2025-12-26", 1, UNIT_WEEKS, 0, "2026-01-02", "2026-01-02", 23},
    /* atw 2 weeks, trigger Fri 2026-12-18: ends Fri 2027-01-01 -> Sat, Sun
     * -> Mon 2027-01-04. */
    {A, "2026-12-18", 2, UNIT_WEEKS, 0, "2027-01-04", "2027-01-04", 23},
    /* atw 1 week from Fri 2026-12-18: Fri 12-25, Sat 26, Sun 27 -> Mon 12-28. */
    {A, "2026-12-18", 1, UNIT_WEEKS, 0, "2026-12-28", "2026-12-28", 23},

    /* --- Month ends --- */
    /* plain 1 month, trigger Sat 2026-01-31: no 02-31 -> last day of Feb, 02-28. */
    {P, "2026-01-31", 1, UNIT_MONTHS, 0, "2026-02-28", "2026-02-28", 23},
    /* leap year: 2028-01-31 + 1 month -> 02-29. */
    {P, "2028-01-31", 1, UNIT_MONTHS, 0, "2028-02-29", "2028-02-29", 23},
    /* atw: Sat 2026-02-28 -> Sun -> Mon 03-02. */
    {A, "2026-01-31", 1, UNIT_MONTHS, 0, "2026-03-02", "2026-03-02", 23},
    /* eu: Sat 02-28 stays. */
    {E, "2026-01-31", 1, UNIT_MONTHS, 0, "2026-02-28", "2026-02-28", 23},
    /* plain 6 months, trigger Sun 2025-08-31: no 2026-02-31 -> Sat 02-28. */
    {P, "2025-08-31", 6, UNIT_MONTHS, 0, "2026-02-28", "2026-02-28", 23},
    /* atw 6 months (over 3: art. 4) is plain: Sat 02-28, no shift. */
    {A, "2025-08-31", 6, UNIT_MONTHS, 0, "2026-02-28", "2026-02-28", 23},
    /* atw 4 months, trigger Sat 2026-01-31: 05-31 is a Sunday; art. 4: stays. */
    {A, "2026-01-31", 4, UNIT_MONTHS, 0, "2026-05-31", "2026-05-31", 22},
    /* eu 2 months, trigger Wed 2025-12-31: 2026-02-31 -> 02-28 (Sat), stays. */
    {E, "2025-12-31", 2, UNIT_MONTHS, 0, "2026-02-28", "2026-02-28", 23},
    /* years (art. 4 on atw): 2024-02-29 + 1 year -> 2025-02-28 (Fri). */
    {A, "2024-02-29", 1, UNIT_YEARS, 0, "2025-02-28", "2025-02-28", 23},
    /* atw 1 year from Sat 2025-04-05 ends Sun 2026-04-05 (Easter): no shift. */
    {A, "2025-04-05", 1, UNIT_YEARS, 0, "2026-04-05", "2026-04-05", 22},
    /* same_day month: day 1 = Sun 2026-02-01 itself, so day 0 = 01-31 and the
     * month ends 02-28. */
    {P, "2026-02-01", 1, UNIT_MONTHS, 1, "2026-02-28", "2026-02-28", 23},

    /* --- Procedure days (AA) --- */
    /* 6 AA days across Easter 2026, same_day from the nader gehoor on Wed
     * 04-01: 1 Wed 04-01, 2 Thu 04-02, (Fri GV, Sat, Sun, Mon TP), 3 Tue
     * 04-07, 4 Wed 04-08, 5 Thu 04-09, 6 Fri 04-10. */
    {R, "2026-04-01", 6, UNIT_DAYS, 1, "2026-04-10", "2026-04-10", 22},
    /* Not same_day from Tue 03-31: day 1 is Wed 04-01 again -> Fri 04-10. */
    {R, "2026-03-31", 6, UNIT_DAYS, 0, "2026-04-10", "2026-04-10", 22},
    /* working_days means the same on this clock. */
    {R, "2026-03-31", 6, UNIT_WORKING_DAYS, 0, "2026-04-10", "2026-04-10", 22},
    /* 3 procedure days from Tue 05-12: 1 Wed 05-13, (Thu Hemelvaart, Fri
     * decree, Sat, Sun), 2 Mon 05-18, 3 Tue 05-19. */
    {R, "2026-05-12", 3, UNIT_DAYS, 0, "2026-05-19", "2026-05-19", 22},
    /* same_day on a rest day: trigger Sat 2026-05-02, day 1 counts from Mon
     * 05-04: 1 Mon 05-04, (Tue 05-05 Bevrijdingsdag), 2 Wed 05-06. */
    {R, "2026-05-02", 2, UNIT_DAYS, 1, "2026-05-06", "2026-05-06", 22},

    /* --- Working days on the other clocks --- */
    /* 3 working days (D01) from Thu 2026-12-24: (Fri 25, Sat 26, Sun 27),
     * 1 Mon 12-28, 2 Tue 12-29, 3 Wed 12-30. */
    {P, "2026-12-24", 3, UNIT_WORKING_DAYS, 0, "2026-12-30", "2026-12-30", 23},
    {A, "2026-12-24", 3, UNIT_WORKING_DAYS, 0, "2026-12-30", "2026-12-30", 23},
    {E, "2026-12-24", 3, UNIT_WORKING_DAYS, 0, "2026-12-30", "2026-12-30", 23},
    /* 6 working days from Wed 2025-12-31: (Thu 01-01, Fri 01-02 decree, Sat,
     * Sun), 1 Mon 01-05 ... 5 Fri 01-09, (Sat, Sun), 6 Mon 01-12. */
    {P, "2025-12-31", 6, UNIT_WORKING_DAYS, 0, "2026-01-12", "2026-01-12", 23},

    /* --- same_day and DST at the end --- */
    /* plain 1 day same_day, Wed 2026-03-04: the trigger's own day. */
    {P, "2026-03-04", 1, UNIT_DAYS, 1, "2026-03-04", "2026-03-04", 23},
    /* plain 1 day from Sat 03-28: Sun 03-29; the term ends at local
     * midnight 03-30, which is already CEST: 03-29T22:00Z. */
    {P, "2026-03-28", 1, UNIT_DAYS, 0, "2026-03-29", "2026-03-29", 22},
    /* plain 1 day from Sat 10-24: Sun 10-25; ends 10-26 00:00 CET = 10-25T23:00Z. */
    {P, "2026-10-24", 1, UNIT_DAYS, 0, "2026-10-25", "2026-10-25", 23},
};

static const char *clock_str(cs_clock c) { return cal_clock_name(c); }

static void test_terms_table(void **state) {
  cal_calendar *cal = *state;
  for (size_t i = 0; i < sizeof terms / sizeof terms[0]; i++) {
    const term_case *t = &terms[i];
    int64_t due = 0;
    cal_day last = 0;
    int rc = cal_term(cal, t->clock, utc(t->trigger, 10, 0), t->amount, t->unit, t->same_day,
                      &due, &last);
    char got[11];
    cal_format_date(last, got);
    if (rc != CASE_OK || last != D(t->last) || due != utc(t->due_utc, t->due_hour, 0))
      fail_msg("row %zu: %s %ld %s from %s%s: rc %d, last %s (want %s), due %lld (want %s %02d:00Z)",
               i, clock_str(t->clock), t->amount, cal_unit_name(t->unit), t->trigger,
               t->same_day ? " same_day" : "", rc, got, t->last, (long long)due, t->due_utc,
               t->due_hour);
  }
}

static void test_term_local_trigger(void **state) {
  cal_calendar *cal = *state;
  int64_t due;
  cal_day last;
  /* A trigger at 2026-03-28T23:30Z is 00:30 CET on Sun 03-29 in Amsterdam:
   * day 1 = Mon 03-30, plain 1 day ends 03-30, due 03-30T22:00Z. */
  assert_int_equal(cal_term(cal, CLOCK_PLAIN, utc("2026-03-28", 23, 30), 1, UNIT_DAYS, 0, &due,
                            &last),
                   CASE_OK);
  assert_int_equal(last, D("2026-03-30"));
  assert_int_equal(due, utc("2026-03-30", 22, 0));
  /* 2026-10-24T21:59Z is 23:59 CEST on Sat 10-24: day 1 = Sun 10-25. */
  assert_int_equal(cal_term(cal, CLOCK_PLAIN, utc("2026-10-24", 21, 59), 1, UNIT_DAYS, 0, &due,
                            &last),
                   CASE_OK);
  assert_int_equal(last, D("2026-10-25"));
  assert_int_equal(due, utc("2026-10-25", 23, 0));
}

static void test_term_hours(void **state) {
  cal_calendar *cal = *state;
  int64_t due;
  cal_day last;
  int64_t t0 = utc("2026-04-02", 10, 0); /* before Easter: ignored for hours */
  static const cs_clock clocks[] = {CLOCK_PLAIN, CLOCK_ATW, CLOCK_EU, CLOCK_PROCEDURE};
  for (size_t i = 0; i < 4; i++) {
    assert_int_equal(cal_term(cal, clocks[i], t0, 48, UNIT_HOURS, 0, &due, &last), CASE_OK);
    assert_int_equal(due, t0 + 48 * 3600);
    assert_int_equal(last, CAL_NO_DAY);
    assert_int_equal(cal_term(cal, clocks[i], t0, 90, UNIT_MINUTES, 1, &due, &last), CASE_OK);
    assert_int_equal(due, t0 + 5400);
    assert_int_equal(last, CAL_NO_DAY);
    assert_int_equal(cal_term(cal, clocks[i], t0, 7, UNIT_SECONDS, 0, &due, &last), CASE_OK);
    assert_int_equal(due, t0 + 7);
  }
  /* Overflow is refused, not wrapped. */
  assert_int_equal(cal_term(cal, CLOCK_PLAIN, t0, LONG_MAX, UNIT_HOURS, 0, &due, &last),
                   CASE_INVALID);
  assert_int_equal(cal_term(cal, CLOCK_PLAIN, INT64_MAX - 5, 10, UNIT_SECONDS, 0, &due, &last),
                   CASE_INVALID);
}

static void test_term_zero_and_invalid(void **state) {
  cal_calendar *cal = *state;
  int64_t due;
  cal_day last;
  int64_t t0 = utc("2026-04-02", 10, 0);
  /* 0 days (e.g. a vertrektermijn of 0 days): due at the trigger, the last
   * day is the trigger's local day, no Atw shift. */
  assert_int_equal(cal_term(cal, CLOCK_ATW, t0, 0, UNIT_DAYS, 0, &due, &last), CASE_OK);
  assert_int_equal(due, t0);
  assert_int_equal(last, D("2026-04-02"));

  assert_int_equal(cal_term(cal, CLOCK_PLAIN, t0, -1, UNIT_DAYS, 0, &due, &last), CASE_INVALID);
  assert_int_equal(cal_term(cal, CLOCK_PLAIN, t0, -1, UNIT_HOURS, 0, &due, &last), CASE_INVALID);
  assert_int_equal(cal_term(cal, CLOCK_PROCEDURE, t0, 1, UNIT_WEEKS, 0, &due, &last),
                   CASE_INVALID);
  assert_int_equal(cal_term(cal, CLOCK_PROCEDURE, t0, 1, UNIT_MONTHS, 0, &due, &last),
                   CASE_INVALID);
  assert_int_equal(cal_term(cal, CLOCK_PROCEDURE, t0, 1, UNIT_YEARS, 0, &due, &last),
                   CASE_INVALID);
  assert_int_equal(cal_term(cal, (cs_clock)9, t0, 1, UNIT_DAYS, 0, &due, &last), CASE_INVALID);
  assert_int_equal(cal_term(cal, CLOCK_PLAIN, t0, 1, (cs_unit)42, 0, &due, &last), CASE_INVALID);
  /* Results past 9999-12-31 are refused; huge amounts do not loop forever. */
  assert_int_equal(cal_term(cal, CLOCK_PLAIN, t0, 9000, UNIT_YEARS, 0, &due, &last),
                   CASE_INVALID);
  assert_int_equal(cal_term(cal, CLOCK_PLAIN, t0, LONG_MAX, UNIT_DAYS, 0, &due, &last),
                   CASE_INVALID);
  assert_int_equal(cal_term(cal, CLOCK_PLAIN, t0, LONG_MAX, UNIT_MONTHS, 0, &due, &last),
                   CASE_INVALID);
  assert_int_equal(cal_term(cal, CLOCK_PROCEDURE, t0, 3000000, UNIT_DAYS, 0, &due, &last),
                   CASE_INVALID);
  assert_int_equal(cal_term(cal, CLOCK_PLAIN, INT64_MAX, 1, UNIT_DAYS, 0, &due, &last),
                   CASE_INVALID);
  assert_int_equal(cal_term(cal, CLOCK_PLAIN, t0, 1, UNIT_DAYS, 0, NULL, &last), CASE_MISUSE);
}

/* The Atw rules in their own words, checked for every trigger date 2024-2028
 * and terms of 1-20 days and 1-12 weeks: the atw end is the earliest day on
 * or after the plain end that (art. 1) is no Saturday, Sunday or holiday and
 * (art. 2, terms of 3 days or more) leaves at least two such days in the
 * term.  This states the rule directly instead of repeating the shift loop. */
static int working_between(const cal_calendar *cal, cal_day a, cal_day b) {
  int n = 0;
  for (cal_day x = a; x <= b; x++)
    n += !cal_is_rest_day(cal, x);
  return n;
}

static int atw_acceptable(const cal_calendar *cal, cal_day start, cal_day end, long len) {
  if (cal_is_rest_day(cal, end))
    return 0;
  return len < 3 || working_between(cal, start, end) >= 2;
}

static void test_atw_property(void **state) {
  cal_calendar *cal = *state;
  for (cal_day t = D("2024-01-01"); t <= D("2028-12-31"); t++) {
    int64_t trig = cal_local_midnight(t) + 12 * 3600;
    for (int k = 0; k < 32; k++) {
      long amount = k < 20 ? k + 1 : k - 19;
      cs_unit unit = k < 20 ? UNIT_DAYS : UNIT_WEEKS;
      long len = unit == UNIT_DAYS ? amount : 7 * amount;
      int64_t due_p, due_a;
      cal_day last_p, last_a;
      assert_int_equal(cal_term(cal, CLOCK_PLAIN, trig, amount, unit, 0, &due_p, &last_p),
                       CASE_OK);
      assert_int_equal(cal_term(cal, CLOCK_ATW, trig, amount, unit, 0, &due_a, &last_a),
                       CASE_OK);
      assert_int_equal(last_p, t + len); /* plain: day 1 = t + 1 */
      assert_int_equal(due_a, cal_local_midnight(last_a + 1));
      cal_day want = last_p;
      while (!atw_acceptable(cal, t + 1, want, len))
        want++;
      if (last_a != want) {
        char a[11], b[11];
        cal_format_date(t, a);
        cal_format_date(want, b);
        fail_msg("atw %ld %s from %s: want %s", amount, cal_unit_name(unit), a, b);
      }
    }
  }
}

static void test_term_runtime_holiday(void **state) {
  cal_calendar *cal = *state;
  int64_t due;
  cal_day last;
  int64_t t0 = utc("2026-05-12", 10, 0); /* Tue */
  /* Before: atw 2 days ends Thu 05-14 Hemelvaart -> Mon 05-18 (see the table). */
  assert_int_equal(cal_term(cal, CLOCK_ATW, t0, 2, UNIT_DAYS, 0, &due, &last), CASE_OK);
  assert_int_equal(last, D("2026-05-18"));
  /* A new decree makes Mon 05-18 a holiday: the term now ends Tue 05-19. */
  assert_int_equal(cal_add_holiday(cal, D("2026-05-18"), NULL), CASE_OK);
  assert_int_equal(cal_term(cal, CLOCK_ATW, t0, 2, UNIT_DAYS, 0, &due, &last), CASE_OK);
  assert_int_equal(last, D("2026-05-19"));
  assert_int_equal(due, utc("2026-05-19", 22, 0));
  /* And 3 procedure days from Tue 05-12: 1 Wed 05-13, (Thu-Mon), 2 Tue
   * 05-19, 3 Wed 05-20. */
  assert_int_equal(cal_term(cal, CLOCK_PROCEDURE, t0, 3, UNIT_DAYS, 0, &due, &last), CASE_OK);
  assert_int_equal(last, D("2026-05-20"));
  /* The plain clock does not care. */
  assert_int_equal(cal_term(cal, CLOCK_PLAIN, t0, 6, UNIT_DAYS, 0, &due, &last), CASE_OK);
  assert_int_equal(last, D("2026-05-18"));
}

static void test_names(void **state) {
  (void)state;
  cs_clock c = CLOCK_PLAIN;
  assert_string_equal(cal_clock_name(CLOCK_PLAIN), "plain");
  assert_string_equal(cal_clock_name(CLOCK_ATW), "atw");
  assert_string_equal(cal_clock_name(CLOCK_EU), "eu");
  assert_string_equal(cal_clock_name(CLOCK_PROCEDURE), "procedure");
  assert_int_equal(cal_clock_parse("procedure", &c), 0);
  assert_int_equal(c, CLOCK_PROCEDURE);
  assert_int_equal(cal_clock_parse("atw", &c), 0);
  assert_int_equal(c, CLOCK_ATW);
  assert_int_equal(cal_clock_parse("eu", &c), 0);
  assert_int_equal(c, CLOCK_EU);
  assert_int_equal(cal_clock_parse("plain", &c), 0);
  assert_int_equal(c, CLOCK_PLAIN);
  assert_int_equal(cal_clock_parse("ATW", &c), -1);
  assert_int_equal(cal_clock_parse("", &c), -1);
  assert_int_equal(cal_clock_parse(NULL, &c), -1);
  assert_string_equal(cal_unit_name(UNIT_SECONDS), "seconds");
  assert_string_equal(cal_unit_name(UNIT_MINUTES), "minutes");
  assert_string_equal(cal_unit_name(UNIT_HOURS), "hours");
  assert_string_equal(cal_unit_name(UNIT_DAYS), "days");
  assert_string_equal(cal_unit_name(UNIT_WORKING_DAYS), "working_days");
  assert_string_equal(cal_unit_name(UNIT_WEEKS), "weeks");
  assert_string_equal(cal_unit_name(UNIT_MONTHS), "months");
  assert_string_equal(cal_unit_name(UNIT_YEARS), "years");
}

/* Duration text shared by the loader and extend_deadline/set_deadline. */
static void test_duration_parse(void **state) {
  (void)state;
  long n = -1;
  cs_unit u = UNIT_SECONDS;
  char *param = NULL;
  assert_int_equal(cal_duration_parse("6 days", &n, NULL, &u), 0);
  assert_int_equal(n, 6);
  assert_int_equal(u, UNIT_DAYS);
  assert_int_equal(cal_duration_parse("  3   working   days", &n, NULL, &u), 0);
  assert_int_equal(n, 3);
  assert_int_equal(u, UNIT_WORKING_DAYS);
  assert_int_equal(cal_duration_parse("1 month", &n, NULL, &u), 0);
  assert_int_equal(u, UNIT_MONTHS);
  assert_int_equal(cal_duration_parse("${rvt_days} days", &n, &param, &u), 0);
  assert_string_equal(param, "rvt_days");
  assert_int_equal(n, 0);
  free(param);
  /* ${...} only where a param is allowed */
  assert_int_equal(cal_duration_parse("${rvt_days} days", &n, NULL, &u), -1);
  assert_int_equal(cal_duration_parse("${} days", &n, &param, &u), -1);
  assert_int_equal(cal_duration_parse("${a b} days", &n, &param, &u), -1);
  assert_int_equal(cal_duration_parse("6days", &n, NULL, &u), -1);
  assert_int_equal(cal_duration_parse("6 fortnights", &n, NULL, &u), -1);
  assert_int_equal(cal_duration_parse("-6 days", &n, NULL, &u), -1);
  assert_int_equal(cal_duration_parse("", &n, NULL, &u), -1);
  assert_int_equal(cal_duration_parse(NULL, &n, NULL, &u), -1);
  assert_int_equal(cal_duration_parse("999999999999 days", &n, NULL, &u), -2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ymd),
      cmocka_unit_test(test_parse_format),
      cmocka_unit_test(test_local_day),
      cmocka_unit_test(test_local_midnight),
      cmocka_unit_test_setup_teardown(test_holidays_table, setup, teardown),
      cmocka_unit_test_setup_teardown(test_not_holidays, setup, teardown),
      cmocka_unit_test_setup_teardown(test_holidays_other_years, setup, teardown),
      cmocka_unit_test_setup_teardown(test_add_holiday, setup, teardown),
      cmocka_unit_test_setup_teardown(test_terms_table, setup, teardown),
      cmocka_unit_test_setup_teardown(test_term_local_trigger, setup, teardown),
      cmocka_unit_test_setup_teardown(test_term_hours, setup, teardown),
      cmocka_unit_test_setup_teardown(test_term_zero_and_invalid, setup, teardown),
      cmocka_unit_test_setup_teardown(test_term_runtime_holiday, setup, teardown),
      cmocka_unit_test_setup_teardown(test_atw_property, setup, teardown),
      cmocka_unit_test(test_names),
      cmocka_unit_test(test_duration_parse),
  };
  return cmocka_run_group_tests_name("calendar", tests, NULL, NULL);
}
