"""Reading customers from CSV: good files, and bad rows reported with file, line and column."""

import pytest

from controller.customers import CustomerRecord, read_customers_csv
from controller.errors import CustomerImportError


def write(tmp_path, text, name="customers.csv", encoding="utf-8"):
    path = tmp_path / name
    path.write_text(text, encoding=encoding)
    return path


def test_good_file_with_optional_process_bom_spaces_and_blank_lines(tmp_path):
    path = write(tmp_path, "\ufeffphone,country,do_not_record,process\n"
                           "+4915112345678,DE,false,\n"
                           "\n"
                           " 0044 7700 900123 , GB , TRUE , uk\n"
                           "+14155550199,US-CA,False,us-all-party\n")
    assert read_customers_csv(path) == [
        CustomerRecord("+4915112345678", "DE", False, None),
        CustomerRecord("+447700900123", "GB", True, "uk"),
        CustomerRecord("+14155550199", "US-CA", False, "us-all-party"),
    ]


def test_process_column_is_optional_and_country_may_be_empty(tmp_path):
    path = write(tmp_path, "do_not_record,phone,country\ntrue,+33612345678,\n")
    assert read_customers_csv(path) == [CustomerRecord("+33612345678", None, True, None)]


def test_every_bad_cell_is_reported_with_file_line_and_column(tmp_path):
    path = write(tmp_path, "phone,country,do_not_record,process\n"
                           "+4915112345678,DE,false,\n"
                           "4930,NO,maybe,\n"
                           "+447700900123,UK,true,fr\n"
                           "+4915112345678,DE,true,\n"
                           "+4930,DE\n")
    with pytest.raises(CustomerImportError) as caught:
        read_customers_csv(path, known_processes={"de", "uk"})
    assert caught.value.problems == [
        f"{path}:3: phone: expected an E.164 number like \"+4930100100\", got '4930'",
        f"{path}:3: do_not_record: expected true or false, got 'maybe'",
        f"{path}:4: country: expected an ISO 3166 country code like \"DE\" or \"US-CA\" (the ISO code is 'GB'), "
        f"got 'UK'",
        f"{path}:4: process: expected a configured process (de, uk), got 'fr'",
        f"{path}:5: phone: expected each number once, got '+4915112345678' again (first on line 2)",
        f"{path}:6: row: expected 4 fields, got 2",
    ]


def test_unknown_country_code(tmp_path):
    path = write(tmp_path, "phone,country,do_not_record\n+4915112345678,XX,false\n")
    with pytest.raises(CustomerImportError, match=r":2: country: .*\(unknown country code\), got 'XX'"):
        read_customers_csv(path)


@pytest.mark.parametrize("header", ["phone,country", "phone,country,do_not_record,notes", "phone,phone,country,do_not_record", ""])
def test_bad_header_is_reported_on_line_1(tmp_path, header):
    path = write(tmp_path, header + "\n+4915112345678,DE,false\n")
    with pytest.raises(CustomerImportError, match=r"customers.csv:1: header: expected the columns phone, country"):
        read_customers_csv(path)


def test_unreadable_files(tmp_path):
    with pytest.raises(CustomerImportError, match="expected a readable UTF-8 CSV file"):
        read_customers_csv(tmp_path / "absent.csv")
    latin = write(tmp_path, "phone,country,do_not_record\n+4915112345678,DE,false # M\xfcller\n", encoding="latin-1")
    with pytest.raises(CustomerImportError, match="expected a readable UTF-8 CSV file"):
        read_customers_csv(latin)
