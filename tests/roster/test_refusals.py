"""A malformed bundle is refused whole: plain messages naming file and line, nothing written."""
from __future__ import annotations

import csv
import os
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from portal.roster import bundle, import_roster
from portal.roster.parse import USER_ROLES
from portal.roster.problems import MAX_PROBLEMS
from tests.roster.conftest import HEADERS, refused, snapshot


def test_malformed_enrollment_names_file_and_line(db_session, bundles, roster_rows, imported):
    roster_rows["enrollments"][2]["userSourcedId"] = "u99"

    problems = refused(db_session, bundles.write(roster_rows))

    assert problems == ['enrollments.csv line 4: userSourcedId "u99" is not in users.csv']
    assert snapshot(db_session) == imported


def test_missing_column_is_refused(db_session, bundles, roster_rows, imported):
    headers = {"users": [c for c in HEADERS["users"] if c != "username"]}

    problems = refused(db_session, bundles.write(roster_rows, headers=headers))

    assert problems == ['users.csv line 1: missing column "username"']
    assert snapshot(db_session) == imported


@pytest.mark.parametrize("separator, named", [(";", "semicolons"), ("\t", "tabs")])
@pytest.mark.parametrize("quoted", [False, True])
def test_a_file_separated_by_semicolons_says_so(db_session, bundles, roster_rows, imported,
                                                separator, named, quoted):
    # European Excel saves "CSV" with semicolons: every column was there, yet the import said
    # 'users.csv line 1: missing columns "sourcedId", "enabledUser", ...'.
    folder = bundles.write(roster_rows)
    path = folder / "users.csv"
    with open(path, "w", newline="", encoding="utf-8-sig") as f:
        csv.writer(f, delimiter=separator, quoting=csv.QUOTE_ALL if quoted else csv.QUOTE_MINIMAL) \
            .writerows([HEADERS["users"]] + [[row.get(c, "") for c in HEADERS["users"]]
                                             for row in roster_rows["users"]])

    problems = refused(db_session, folder)

    assert problems == [f"users.csv line 1: the columns are separated by {named}, not commas (as "
                        'Excel saves "CSV" in some languages); save the file as comma-separated '
                        "CSV (UTF-8) and import again"]
    assert snapshot(db_session) == imported


def test_a_header_with_semicolons_but_not_the_columns_is_a_missing_column(db_session, bundles,
                                                                          roster_rows, imported):
    headers = {"users": [c if c != "username" else "user;name" for c in HEADERS["users"]]}

    problems = refused(db_session, bundles.write(roster_rows, headers=headers))

    assert problems == ['users.csv line 1: missing column "username"']
    assert snapshot(db_session) == imported


def _add_blank_rows(folder: Path, name: str, blanks: dict[int, str]) -> None:
    """Put each blank row of `blanks` (before line: row) into the file, ending each with CRLF."""
    path = folder / f"{name}.csv"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    for before in sorted(blanks, reverse=True):
        lines.insert(before - 1, blanks[before] + "\r\n")
    path.write_text("".join(lines), encoding="utf-8", newline="")


def test_blank_rows_anywhere_are_skipped(db_session, bundles, roster_rows):
    # Excel leaves ",,,," (or quoted empty values) below the last row; each such row was
    # refused with about six problems.
    folder = bundles.write(roster_rows)
    width = len(HEADERS["users"])
    _add_blank_rows(folder, "users", {3: "," * (width - 1), 6: " , ,\t", 99: ",".join(['""'] * width)})
    _add_blank_rows(folder, "enrollments", {99: "," * (len(HEADERS["enrollments"]) + 3)})
    _add_blank_rows(folder, "classes", {2: ",,"})

    import_roster(db_session, folder)

    from sqlalchemy import select

    from portal.models import Enrollment, Person, Section
    assert set(db_session.scalars(select(Person.sourced_id))) == {"u1", "u2", "u3", "u4", "u5", "u6", "u8"}
    assert set(db_session.scalars(select(Enrollment.sourced_id))) == {"e1", "e2", "e3", "e4", "e5"}
    assert set(db_session.scalars(select(Section.sourced_id))) == {"k1", "k2"}


def test_lines_after_blank_rows_keep_their_numbers(db_session, bundles, roster_rows, imported):
    # A row with values is still checked, and named by the file's own line number.
    roster_rows["users"][3]["role"] = "principal"   # line 5 as written
    folder = bundles.write(roster_rows)
    _add_blank_rows(folder, "users", {2: ",,,,", 3: ",,,,"})     # now on line 7
    _add_blank_rows(folder, "enrollments", {4: ",,sch,,"})         # some values: still checked

    problems = refused(db_session, folder)

    assert problems[0].startswith('users.csv line 7: role "principal" is not one of ')
    assert problems[1:] == [f"enrollments.csv line 4: 5 values, but the header line has "
                            f"{len(HEADERS['enrollments'])} columns"]
    assert snapshot(db_session) == imported


def test_a_row_with_values_only_in_columns_the_portal_ignores_is_refused_in_one_line(
        db_session, bundles, roster_rows, imported):
    # Not blank in the file's eyes (a person's row whose values went to the wrong columns looks
    # like this; in a bulk file, skipping it would remove whoever it was meant to be), yet
    # nothing the portal reads: refused, one line a row. It was six or seven lines a row
    # ('sourcedId is empty', 'role is empty', ..., 'sourcedId "" is also on line 10'), which
    # told a district looking at a row with a value in it that the row was empty, and three
    # such rows nearly filled the list of problems, hiding the rest.
    for extra in ({"password": "x"}, {"favouriteColour": "teal", "password": "y"},
                  {"favouriteColour": "teal"}, {"favouriteColour": "teal"}):
        roster_rows["users"].append(extra)
    roster_rows["enrollments"].append({"beginDate": "2025-08-18"})   # OneRoster's, not read
    roster_rows["users"][3]["role"] = "principal"                     # a problem of its own
    headers = {"users": HEADERS["users"] + ["favouriteColour"]}
    folder = bundles.write(roster_rows, headers=headers)
    _add_blank_rows(folder, "classes", {4: ",,,,,,,,,,,,,later,on"})  # past the header's width

    problems = refused(db_session, folder)

    ignored = "every column the portal reads is empty; the row has values only in"
    fix = "which the portal ignores: complete the row or delete it, and export again"
    assert problems == [
        f'classes.csv line 4: {ignored} "periods", column 15, {fix}',
        f'users.csv line 5: role "principal" is not one of {", ".join(USER_ROLES.values())}',
        f'users.csv line 10: {ignored} "password", {fix}',
        f'users.csv line 11: {ignored} "password", "favouriteColour", {fix}',
        f'users.csv line 12: {ignored} "favouriteColour", {fix}',
        f'users.csv line 13: {ignored} "favouriteColour", {fix}',
        f'enrollments.csv line 7: {ignored} "beginDate", {fix}',
    ]
    assert snapshot(db_session) == imported


def test_a_column_name_in_a_message_is_one_line_and_no_terminal_escape(db_session, bundles, roster_rows,
                                                                        imported):
    # Found by review: a header's line break or terminal escape codes were echoed as they were.
    column = "notes\x1b[2J\x1b[31mok: imported 5000 people\n" + "x" * 60
    roster_rows["users"].append({column: "teal"})
    folder = bundles.write(roster_rows, headers={"users": HEADERS["users"] + [column]})
    [problem] = refused(db_session, folder)        # refused() checks it is one line
    assert problem == (
        'users.csv line 11: every column the portal reads is empty; the row has values only in '
        '"notesU+001B[2JU+001B[31mok: imported 5000 peopleU+000Ax...", which the portal ignores: complete '
        'the row or delete it, and export again')
    assert snapshot(db_session) == imported


def test_bad_role_is_refused(db_session, bundles, roster_rows, imported):
    roster_rows["users"][3]["role"] = "principal"

    problems = refused(db_session, bundles.write(roster_rows))

    assert len(problems) == 1
    assert problems[0].startswith('users.csv line 5: role "principal" is not one of ')
    assert snapshot(db_session) == imported


def test_bad_values_are_each_named(db_session, bundles, roster_rows, imported):
    roster_rows["users"][0]["grades"] = "2nd"
    roster_rows["users"][1].update(givenName="", familyName="")   # one of them is enough
    roster_rows["enrollments"][0]["primary"] = "yes"
    roster_rows["orgs"][2]["type"] = "campus"

    problems = refused(db_session, bundles.write(roster_rows))

    assert problems == [
        'orgs.csv line 4: type "campus" is not one of district, school, department, local, '
        "state, national",
        'users.csv line 2: grades "2nd" is not a OneRoster grade (KG, 01 ... 13, PK, ...)',
        "users.csv line 3: givenName and familyName are both empty; a person needs at least one "
        "of them: add it in the student information system and export again",
        'enrollments.csv line 2: primary "yes" is not one of true, false',
    ]
    assert snapshot(db_session) == imported


def test_duplicate_sourced_id_names_both_lines(db_session, bundles, roster_rows, imported):
    roster_rows["classes"].append(dict(roster_rows["classes"][0], title="Room 4 again"))

    problems = refused(db_session, bundles.write(roster_rows))

    assert problems == ['classes.csv line 4: sourcedId "k1" is also on line 2']
    assert snapshot(db_session) == imported


def test_username_clash_ignores_case_and_names_both_lines(db_session, bundles, roster_rows,
                                                          imported):
    roster_rows["users"][5]["username"] = "ADA.lovelace"

    problems = refused(db_session, bundles.write(roster_rows))

    assert problems == ['users.csv line 7: username "ada.lovelace" is also used on line 2 '
                        "(usernames are compared without regard to case)"]
    assert snapshot(db_session) == imported


def test_username_clash_with_database_is_refused_in_delta(db_session, bundles, imported):
    delta = {"users": [{"sourcedId": "u9", "enabledUser": "true", "orgSourcedIds": "s1",
                        "role": "student", "username": "Grace.Hopper", "givenName": "G",
                        "familyName": "H"}]}

    problems = refused(db_session, bundles.write(delta, modes={"users": "delta"}))

    assert problems == ['users.csv line 2: username "grace.hopper" is already used by "u2" in '
                        "the database (usernames are compared without regard to case)"]
    assert snapshot(db_session) == imported


def test_class_in_unknown_school_is_refused(db_session, bundles, roster_rows, imported):
    roster_rows["classes"][1]["schoolSourcedId"] = "d1"  # the district is not a school

    problems = refused(db_session, bundles.write(roster_rows))

    assert problems == ['classes.csv line 3: schoolSourcedId "d1" is not a school in orgs.csv']
    assert snapshot(db_session) == imported


def test_bad_zip_is_refused(db_session, tmp_path, imported):
    archive = tmp_path / "roster.zip"
    archive.write_bytes(b"PK\x03\x04 this is not really a zip")

    problems = refused(db_session, archive)

    assert len(problems) == 1 and problems[0].startswith("roster.zip: not a valid zip file")
    assert snapshot(db_session) == imported


def test_a_pipe_or_a_device_is_refused_without_waiting_on_it(db_session, tmp_path, imported):
    pipe = tmp_path / "roster.zip"
    os.mkfifo(pipe)     # opening it to read would wait for a writer that never comes
    for path in (pipe, Path("/dev/zero")):
        problems = refused(db_session, path)
        assert problems == [f"{path}: not a folder or a .zip file (a device or a pipe); export the "
                            f"roster again"]
    assert snapshot(db_session) == imported


def test_zip_bomb_is_refused_before_it_is_unpacked(db_session, bundles, roster_rows, imported,
                                                  tmp_path, monkeypatch):
    monkeypatch.setattr(bundle, "MAX_FILE_BYTES", 16 << 20)  # the real limit is 2 GiB
    folder = bundles.write(roster_rows)
    archive = tmp_path / "roster.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for path in folder.iterdir():
            if path.name != "users.csv":
                z.write(path, path.name)
        with z.open("users.csv", "w") as users:
            users.write((folder / "users.csv").read_bytes())
            zeros = bytes(1 << 20)
            for _ in range(64):
                users.write(zeros)
    assert archive.stat().st_size < 1 << 20  # a small zip that unpacks to 64 MiB

    tracemalloc.start()
    try:
        problems = refused(db_session, archive)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert problems == ["users.csv: 64 MiB unzipped is more than a roster file may hold (16 MiB); "
                        "check that this is the district's export"]
    assert peak < 8 << 20, peak  # refused from the zip's directory, never unpacked
    assert snapshot(db_session) == imported


def test_non_utf8_bytes_name_the_line(db_session, bundles, roster_rows, imported):
    folder = bundles.write(roster_rows)
    users = folder / "users.csv"
    lines = users.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b"Grace", "Gr\u00e2ce".encode("latin-1"))
    users.write_bytes(b"\n".join(lines))

    problems = refused(db_session, folder)

    assert problems == ["users.csv line 3: the file is not UTF-8 text; save it as UTF-8 and "
                        "import again"]
    assert snapshot(db_session) == imported


def test_missing_file_is_refused(db_session, bundles, roster_rows, imported):
    folder = bundles.write(roster_rows)
    (folder / "classes.csv").unlink()

    problems = refused(db_session, folder)

    assert problems == ["classes.csv is missing (manifest.csv says file.classes is bulk)"]
    assert snapshot(db_session) == imported


def test_missing_manifest_and_missing_path_are_refused(db_session, bundles, roster_rows,
                                                       tmp_path):
    folder = bundles.write(roster_rows)
    (folder / "manifest.csv").unlink()
    before = snapshot(db_session)

    assert refused(db_session, folder) == [
        "manifest.csv is missing: a OneRoster 1.1 bundle starts with it"]
    assert refused(db_session, tmp_path / "nowhere") == [
        f"{tmp_path / 'nowhere'}: there is no such file or folder"]
    too_long = tmp_path / ("x" * 300)   # the file system refuses the name itself (it raised)
    assert refused(db_session, too_long) == [f"{too_long}: cannot be read (File name too long)"]
    assert snapshot(db_session) == before


def test_many_problems_are_capped(db_session, bundles, roster_rows):
    roster_rows["enrollments"] = [
        {"sourcedId": f"x{i}", "classSourcedId": "k1", "schoolSourcedId": "s1",
         "userSourcedId": f"nobody{i}", "role": "student"} for i in range(100)]

    problems = refused(db_session, bundles.write(roster_rows))

    assert len(problems) == MAX_PROBLEMS + 1
    assert problems[-1].startswith(f"(stopped after {MAX_PROBLEMS} problems")


def _zip_bundle(folder, archive):
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(folder.iterdir()):
            z.write(path, path.name)
    return archive


def _patch_headers(archive, names, *, flag=0, method=None):
    """Set a general-purpose flag bit and/or the compression method of members, in both their
    local and central headers, as another zip tool would have written them."""
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as z:
        local = [z.getinfo(n).header_offset for n in names]
        central = z.start_dir
    offsets = [(at, 6) for at in local]  # local header: flags at +6, method at +8
    while data[central:central + 4] == b"PK\x01\x02":
        size = 46 + sum(int.from_bytes(data[central + i:central + i + 2], "little")
                        for i in (28, 30, 32))
        name = data[central + 46:central + 46 + int.from_bytes(data[central + 28:central + 30],
                                                                 "little")].decode()
        if name in names:
            offsets.append((central, 8))  # central header: flags at +8, method at +10
        central += size
    for at, flags in offsets:
        data[at + flags] |= flag
        if method is not None:
            data[at + flags + 2:at + flags + 4] = method.to_bytes(2, "little")
    archive.write_bytes(bytes(data))


def test_password_protected_zip_is_refused(db_session, bundles, roster_rows, imported, tmp_path):
    folder = bundles.write(roster_rows)
    archive = _zip_bundle(folder, tmp_path / "roster.zip")
    _patch_headers(archive, [p.name for p in folder.iterdir()], flag=0x1)  # "encrypted"

    problems = refused(db_session, archive)

    assert problems == ["manifest.csv: the zip is password-protected: export it again without "
                        "a password"]
    assert snapshot(db_session) == imported


def test_zip_with_unreadable_compression_method_is_refused(db_session, bundles, roster_rows,
                                                           imported, tmp_path):
    archive = _zip_bundle(bundles.write(roster_rows), tmp_path / "roster.zip")
    _patch_headers(archive, ["users.csv"], method=9)  # Deflate64, which zipfile cannot unpack

    problems = refused(db_session, archive)

    assert problems == ["users.csv: the zip uses a compression method this importer cannot "
                        "read: deflate64; zip it again with the usual method (deflate), or "
                        "import the unzipped folder"]
    assert snapshot(db_session) == imported


def test_control_characters_in_values_name_file_line_and_column(db_session, bundles,
                                                                roster_rows, imported):
    roster_rows["users"][0]["username"] = "nul\x00user"  # PostgreSQL cannot even store it
    roster_rows["users"][1]["familyName"] = "Hop\x1bper"
    roster_rows["classes"][1]["classCode"] = "M7\nA"   # a name's or title's is a space: test_names.py

    problems = refused(db_session, bundles.write(roster_rows))

    advice = "remove it in the student information system and export again"
    assert problems == [
        f"classes.csv line 3: classCode holds a line break (0x0A); {advice}",
        f"users.csv line 2: username holds a NUL (0x00); {advice}",
        f"users.csv line 3: familyName holds a control character (0x1B); {advice}",
    ]
    assert snapshot(db_session) == imported


def test_tab_in_a_value_and_line_break_in_an_unread_column_pass(db_session, bundles,
                                                                roster_rows):
    roster_rows["classes"][0]["title"] = "Room\t4"
    roster_rows["classes"][0]["location"] = "Building A\nsecond floor"  # free text, not kept
    roster_rows["users"][1]["password"] = "\x00"  # never read

    summary = import_roster(db_session, bundles.write(roster_rows))

    assert summary["sections"].created == 2 and summary["people"].created == 7
    # The row after the two-line one is still named by the line it starts on.
    roster_rows["classes"][1]["title"] = ""
    assert refused(db_session, bundles.write(roster_rows)) == ["classes.csv line 4: title is empty"]


def test_a_value_longer_than_csv_reads_is_named_not_a_traceback(db_session, bundles, roster_rows,
                                                                 imported, runner):
    # Found by review: a 17 MiB value (even in a column the portal ignores) was csv.Error, raw.
    roster_rows["users"][1]["middleName"] = "x" * (17 * 1024 * 1024)
    path = bundles.write(roster_rows)
    problems = refused(db_session, path)
    assert problems == ["users.csv line 3: a value is longer than 16 MiB; no roster field is that "
                        "long, so the export is damaged"]
    assert snapshot(db_session) == imported
    result = runner.invoke(args=["roster", "import", str(path)])
    assert result.exit_code != 0 and "longer than 16 MiB" in result.output
    assert "Traceback" not in result.output and "_csv.Error" not in result.output


def test_a_username_that_grows_past_the_limit_in_lower_case_is_refused(db_session, bundles, roster_rows,
                                                                       imported):
    # Found by review: checked before lower-casing, "İ" x 200 became 400 characters (a failed
    # insert on PostgreSQL; on SQLite an account no sign-in could reach).
    roster_rows["users"][0]["username"] = "\u0130" * 200
    assert refused(db_session, bundles.write(roster_rows)) == [
        "users.csv line 2: username is longer than 255 characters in lower case"]
    assert snapshot(db_session) == imported


@pytest.mark.parametrize("name", ["ada\u00a0lovelace", "ada\u200b.lovelace", "ada\u202e.x",
                                  "ada\x85x", "ada\u2028x"])
def test_a_username_nobody_could_type_is_refused(db_session, bundles, roster_rows, imported, name):
    # Found by review: a no-break space pasted from a spreadsheet, a zero-width space, a
    # direction mark, NEL or a line separator made an account no sign-in and no lookup could find.
    roster_rows["users"][0]["username"] = name
    [problem] = refused(db_session, bundles.write(roster_rows))
    bad = next(c for c in name if not c.isprintable())
    if bad == "\u202e":   # refused in every column the portal reads, a name's too
        assert problem == ("users.csv line 2: username holds an invisible text-direction mark (0x202E); "
                           "remove it in the student information system and export again")
        return
    assert problem == (f"users.csv line 2: username holds a character that cannot be typed "
                       f"(U+{ord(bad):04X}); fix it in the student information system and export again")
    assert snapshot(db_session) == imported


def test_a_value_holding_a_character_that_is_not_text_is_refused(db_session, bundles, roster_rows,
                                                                 imported):
    # Found by review: U+FFFE (a UTF-16 export read the wrong way round) was stored, and every
    # SAML launch of that student failed, as XML cannot carry it.
    roster_rows["users"][0]["givenName"] = "Ada\ufffe"
    assert refused(db_session, bundles.write(roster_rows)) == [
        "users.csv line 2: givenName holds a character that is not text (0xFFFE); remove it in "
        "the student information system and export again"]
    assert snapshot(db_session) == imported


def test_a_composed_and_a_decomposed_username_are_one_name(db_session, bundles, roster_rows,
                                                           imported, client, auth, redis_client):
    # "José" from one export and "Jose" + a combining acute from another look the same: one
    # clash, not two accounts; and a keyboard's composed "José" signs in to the decomposed one.
    import unicodedata

    from sqlalchemy import select

    from portal.auth.services import set_password
    from portal.models import Person
    composed, decomposed = (unicodedata.normalize(form, "José.Garcia") for form in ("NFC", "NFD"))
    roster_rows["users"][0]["username"] = composed
    roster_rows["users"][1]["username"] = decomposed
    assert refused(db_session, bundles.write(roster_rows)) == [
        'users.csv line 3: username "josé.garcia" is also used on line 2 '
        "(usernames are compared without regard to case)"]

    roster_rows["users"][1]["username"] = "grace.hopper"
    roster_rows["users"][0]["username"] = decomposed
    import_roster(db_session, bundles.write(roster_rows))
    ada = db_session.scalar(select(Person).where(Person.sourced_id == "u1"))
    assert ada.username == "josé.garcia" == unicodedata.normalize("NFC", ada.username)
    set_password(db_session, redis_client, ada, "correct horse battery")
    assert auth.login(username=composed).status_code == 302


def test_a_delta_username_clashes_with_a_stored_decomposed_one(db_session, bundles, roster_rows):
    # One left decomposed in the database (migration 0015 leaves a pair it cannot merge):
    # a delta's composed spelling of it is the same name, not a second account.
    import unicodedata

    from sqlalchemy import text
    import_roster(db_session, bundles.write(roster_rows))
    db_session.execute(text("UPDATE person SET username = :name WHERE sourced_id = 'u2'"),
                       {"name": unicodedata.normalize("NFD", "josé.garcia")})
    db_session.commit()
    delta = {"users": [{"sourcedId": "u9", "enabledUser": "true", "orgSourcedIds": "s1",
                        "role": "student", "username": "José.Garcia", "givenName": "J",
                        "familyName": "G"}]}
    assert refused(db_session, bundles.write(delta, modes={"users": "delta"})) == [
        'users.csv line 2: username "josé.garcia" is already used by "u2" in the database '
        "(usernames are compared without regard to case)"]


def test_a_username_with_a_joiner_a_keyboard_types_is_kept(db_session, bundles, roster_rows,
                                                           client, auth, redis_client):
    # Persian and Indic keyboards type the zero-width (non-)joiner inside words.
    from sqlalchemy import select

    from portal.auth.services import set_password
    from portal.models import Person
    roster_rows["users"][0]["username"] = "می\u200cخواهم"
    import_roster(db_session, bundles.write(roster_rows))
    ada = db_session.scalar(select(Person).where(Person.sourced_id == "u1"))
    assert ada.username == "می\u200cخواهم"
    set_password(db_session, redis_client, ada, "correct horse battery")
    assert auth.login(username="می\u200cخواهم").status_code == 302


@pytest.mark.parametrize("value, shown", [("Ada\u202e", "an invisible text-direction mark (0x202E)"),
                                          ("\u2067Ada", "an invisible text-direction mark (0x2067)"),
                                          ("Ad\ufeffa", "an invisible byte order mark (0xFEFF)")])
def test_a_name_holding_an_invisible_direction_mark_is_refused(db_session, bundles, roster_rows,
                                                               imported, value, shown):
    # Found by review: a right-to-left override made a name display as another on staff pages
    # and in the audit log (usernames were refused already; names passed).
    roster_rows["users"][0]["givenName"] = value
    assert refused(db_session, bundles.write(roster_rows)) == [
        f"users.csv line 2: givenName holds {shown}; remove it in the student information "
        "system and export again"]
    assert snapshot(db_session) == imported
